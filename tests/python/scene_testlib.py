"""Helpers for the scene pipeline tests (tests/python/test_scene.py).

The binary is given by ``--geolrp PATH`` on the command line (stripped from sys.argv before
unittest sees it), else by the environment variable GEOLRP, else build/geolrp of this
repository. Real rasters come from ../shared/data relative to the repository.

Debian's interpreter only (/usr/bin/python3): torch, onnx, numpy and the GDAL bindings.
"""

import hashlib
import itertools
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
DATA = os.path.join(REPO, '..', 'shared', 'data')

LANDSAT8 = os.path.join(DATA, 'landsat8', 'LC80200392015216_10band.tif')
S2_160 = os.path.join(DATA, 'sentinel2', 'S2_19UDP_20170729_13band_160m_512.tif')
S2_900 = os.path.join(DATA, 'sentinel2', 'S2_19UDP_20170729_13band_900m_122.tif')
RGB_BYTE = os.path.join(DATA, 'landsat7-rgb', 'RGB.byte.tif')

GEOLRP = None

SANITIZER_MARKERS = ('AddressSanitizer', 'UndefinedBehaviorSanitizer', 'LeakSanitizer',
                     'runtime error:', 'Segmentation fault', 'core dumped')


_workdirs = itertools.count(1)


def new_workdir(root):
    """A new, empty folder root/wNNNN: each test's outputs apart from the others'."""
    d = os.path.join(root, 'w%04d' % next(_workdirs))
    os.makedirs(d)
    return d


class CrashChecks:
    """Exit checks of a geolrp run (a unittest.TestCase mixin): no signal, no crash exit
    code, no sanitizer or crash output."""

    def assertNoCrash(self, res):
        self.assertGreaterEqual(res.code, 0, 'killed by a signal: %r' % res)
        self.assertLess(res.code, 128, 'crashed: %r' % res)
        for m in SANITIZER_MARKERS:
            self.assertNotIn(m, res.stderr, 'crash output: %r' % res)

    def assertExit(self, res, code):
        self.assertNoCrash(res)
        self.assertEqual(res.code, code, repr(res))


def parse_argv():
    """Strips --geolrp PATH / --geolrp=PATH from sys.argv; returns the binary's path."""
    global GEOLRP
    argv = [sys.argv[0]]
    path = None
    i = 1
    while i < len(sys.argv):
        a = sys.argv[i]
        if a == '--geolrp' and i + 1 < len(sys.argv):
            path = sys.argv[i + 1]
            i += 2
            continue
        if a.startswith('--geolrp='):
            path = a.split('=', 1)[1]
            i += 1
            continue
        argv.append(a)
        i += 1
    sys.argv[:] = argv
    GEOLRP = os.path.abspath(path or os.environ.get('GEOLRP') or
                             os.path.join(REPO, 'build', 'geolrp'))
    return GEOLRP


def binary():
    if GEOLRP is None:
        parse_argv()
    return GEOLRP


class Result:
    def __init__(self, proc, args):
        self.code = proc.returncode
        self.stdout = proc.stdout.decode('utf-8', 'replace')
        self.stderr = proc.stderr.decode('utf-8', 'replace')
        self.args = args

    def __repr__(self):
        return 'geolrp %s -> exit %s\nstderr: %s' % (' '.join(self.args), self.code,
                                                      self.stderr[-3000:])


def run(args, timeout=300):
    args = [str(a) for a in args]
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '1')
    proc = subprocess.run([binary()] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, env=env)
    return Result(proc, args)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------ models ---

def make_cnn(path, channels, tile=32, classes=2, seed=0, class_names=None, metadata=None):
    """A small CNN (N, C, H, W) -> (N, classes) with random weights, exported to ONNX
    (opset 13, input "input", dynamic batch). tile: H = W, or (H, W). class_names: a list,
    stored as the QGIS plugin's {"0": name, ...} object; metadata: further metadata_props."""
    import torch
    import torch.nn as nn
    import onnx
    th, tw = (tile, tile) if np.isscalar(tile) else tile
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(8 * (th // 2) * (tw // 2), classes)).eval()
    torch.onnx.export(model, torch.zeros(1, channels, th, tw), path, opset_version=13,
                      input_names=['input'], output_names=['output'],
                      dynamic_axes={'input': {0: 'N'}, 'output': {0: 'N'}})
    props = dict(metadata or {})
    if class_names is not None:
        props['class_names'] = json.dumps({str(k): n for k, n in enumerate(class_names)})
    if props:
        m = onnx.load(path)
        for k, v in props.items():
            p = m.metadata_props.add()
            p.key, p.value = k, v if isinstance(v, str) else json.dumps(v)
        onnx.save(m, path)
    return model


# ----------------------------------------------------------------------------- rasters ---

def translate(src, dst, **kw):
    """gdal.Translate to a GeoTIFF (a real file: descriptions, nodata and georeferencing
    are kept)."""
    kw.setdefault('format', 'GTiff')
    ds = gdal.Translate(dst, src, **kw)
    ds = None
    return dst


def crop(src, dst, x0, y0, w, h, bands=None):
    kw = {'srcWin': [x0, y0, w, h]}
    if bands:
        kw['bandList'] = list(bands)
    return translate(src, dst, **kw)


def write_array(dst, arr, gt=None, wkt=None, nodata=None, descriptions=None,
                dtype=gdal.GDT_UInt16):
    """(bands, H, W) array to a GeoTIFF; no georeferencing unless given."""
    arr = np.asarray(arr)
    C, H, W = arr.shape
    ds = gdal.GetDriverByName('GTiff').Create(dst, W, H, C, dtype)
    if gt is not None:
        ds.SetGeoTransform(gt)
    if wkt is not None:
        ds.SetProjection(wkt)
    for k in range(C):
        b = ds.GetRasterBand(k + 1)
        if nodata is not None:
            b.SetNoDataValue(nodata)
        if descriptions:
            b.SetDescription(descriptions[k])
        b.WriteArray(arr[k])
    ds.FlushCache()
    ds = None
    return dst


def read_array(path, bands=None):
    """float32 (bands, H, W) of a raster's values (no scaling)."""
    ds = gdal.Open(path)
    idx = list(bands) if bands else list(range(1, ds.RasterCount + 1))
    out = np.stack([ds.GetRasterBand(b).ReadAsArray().astype(np.float32) for b in idx])
    ds = None
    return out


def valid_mask(path, bands=None):
    """True where every selected band's GDAL mask is non-zero."""
    ds = gdal.Open(path)
    idx = list(bands) if bands else list(range(1, ds.RasterCount + 1))
    v = None
    for b in idx:
        m = ds.GetRasterBand(b).GetMaskBand().ReadAsArray() != 0
        v = m if v is None else (v & m)
    ds = None
    return v


class Raster:
    """Everything a test wants to know about an output raster, read once."""

    def __init__(self, path):
        self.path = path
        ds = gdal.Open(path)
        self.width, self.height, self.count = ds.RasterXSize, ds.RasterYSize, ds.RasterCount
        self.gt = ds.GetGeoTransform(can_return_null=True)
        self.wkt = ds.GetProjectionRef()
        srs = ds.GetSpatialRef()
        self.srs = srs.Clone() if srs is not None else None
        self.metadata = ds.GetMetadata() or {}
        self.image_structure = ds.GetMetadata('IMAGE_STRUCTURE') or {}
        self.driver = ds.GetDriver().ShortName
        self.bands = []
        for k in range(ds.RasterCount):
            b = ds.GetRasterBand(k + 1)
            ct = b.GetColorTable()
            self.bands.append({
                'description': b.GetDescription(),
                'type': gdal.GetDataTypeName(b.DataType),
                'nodata': b.GetNoDataValue(),
                'metadata': b.GetMetadata() or {},
                'overviews': b.GetOverviewCount(),
                'block': b.GetBlockSize(),
                'categories': b.GetCategoryNames(),
                'color_table': None if ct is None else
                [ct.GetColorEntry(i) for i in range(ct.GetCount())],
                'color_interp': b.GetColorInterpretation(),
            })
        self.data = ds.ReadAsArray()
        if self.count == 1:
            self.data = self.data[None]
        self.info = gdal.Info(ds, format='json')
        ds = None

    def descriptions(self):
        return [b['description'] for b in self.bands]


def same_crs(wkt_or_srs_a, wkt_or_srs_b):
    def srs(v):
        if v is None or v == '':
            return None
        if isinstance(v, osr.SpatialReference):
            return v
        s = osr.SpatialReference()
        s.ImportFromWkt(v)
        return s
    a, b = srs(wkt_or_srs_a), srs(wkt_or_srs_b)
    if a is None or b is None:
        return a is None and b is None
    return bool(a.IsSame(b))


def arrays_equal_nan(a, b):
    """Bit-level equality of float arrays, NaN == NaN."""
    a = np.asarray(a)
    b = np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


# ---------------------------------------------------------------------------------- QML ---

def parse_qml(path):
    with open(path, 'rb') as f:
        text = f.read()
    return ET.fromstring(text)


def qml_renderer(root):
    r = root.find('.//rasterrenderer')
    return r


def ramp_items(root):
    """[(value, color)] of the colorrampshader items."""
    shader = root.find('.//colorrampshader')
    if shader is None:
        return None
    return [(float(i.get('value')), i.get('color').lower()) for i in shader.findall('item')]


def qml_path(raster_path):
    return os.path.splitext(raster_path)[0] + '.qml'


# ------------------------------------------------------------------------------- .npy ---

def relevance(model, x, workdir, name, extra=()):
    """`geolrp relevance` on a float32 (N, C, H, W) array; returns (R, scores, Result)."""
    xp = os.path.join(workdir, name + '_x.npy')
    rp = os.path.join(workdir, name + '_r.npy')
    sp = os.path.join(workdir, name + '_s.npy')
    np.save(xp, np.ascontiguousarray(x, dtype=np.float32))
    res = run(['relevance', '--model', model, '--input', xp, '--output', rp, '--scores', sp,
               '--overwrite', '-q'] + list(extra))
    if res.code != 0:
        return None, None, res
    return np.load(rp), np.load(sp), res


def tile_positions(size, tile, stride):
    """Tile origins along one axis: every stride, plus a last tile flush with the edge."""
    if size <= tile:
        return [0]
    pos = []
    p = 0
    while p + tile < size:
        pos.append(p)
        p += stride
    if not pos or pos[-1] != size - tile:
        pos.append(size - tile)
    return pos


def tiles_of(arr, th, tw, sy=None, sx=None):
    """(C, H, W) -> [(y0, x0, (C, th, tw))] row-major, at strides sy, sx (default: the
    tile size, no overlap). Needs H >= th and W >= tw."""
    C, H, W = arr.shape
    out = []
    for y0 in tile_positions(H, th, sy or th):
        for x0 in tile_positions(W, tw, sx or tw):
            out.append((y0, x0, arr[:, y0:y0 + th, x0:x0 + tw]))
    return out


def _window(mode, tile, stride):
    i = np.arange(tile, dtype=np.float64)
    if mode == 'hann':
        return (np.sin(np.pi * (i + 0.5) / tile) ** 2).astype(np.float32)
    if mode == 'center':
        return np.where(np.abs(i + 0.5 - tile / 2.0) <= stride / 2.0, 1.0,
                        1e-6).astype(np.float32)
    return np.ones(tile, np.float32)


def blend_weights(mode, tile, stride):
    """The documented blending windows (src/raster/tiling.c), float32 (th, tw): hann
    sin^2(pi (i + 0.5) / T) per axis; center 1 on the central stride x stride part, 1e-6
    elsewhere; uniform 1. tile and stride: a number or (y, x)."""
    th, tw = (tile, tile) if np.isscalar(tile) else tile
    sy, sx = (stride, stride) if np.isscalar(stride) else stride
    return (_window(mode, th, sy)[:, None] * _window(mode, tw, sx)[None, :]).astype(np.float32)


def blended_mosaic(tiles, values, H, W, weights=None):
    """Weighted average of per-tile (B, th, tw) values over the tiles covering each pixel,
    float64 (B, H, W); NaN where no tile covers. weights: (th, tw), default uniform."""
    B = values[0].shape[0]
    acc = np.zeros((B, H, W))
    cnt = np.zeros((H, W))
    for (y0, x0, t), v in zip(tiles, values):
        th, tw = t.shape[1:]
        w = np.ones((th, tw)) if weights is None else weights.astype(np.float64)
        acc[:, y0:y0 + th, x0:x0 + tw] += w * v
        cnt[y0:y0 + th, x0:x0 + tw] += w
    with np.errstate(invalid='ignore', divide='ignore'):
        return acc / cnt


def uniform_mosaic(tiles, values, H, W):
    return blended_mosaic(tiles, values, H, W)


def softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
