#!/usr/bin/python3
"""End-to-end tests of the scene pipeline: `geolrp explain` and `geolrp classify` on real
georeferenced rasters (../shared/data relative to the repository), with small random CNNs
exported to ONNX here.

What is checked: the relevance COG (layout, type, grid, CRS, band names, NaN nodata and
the input mask, statistics, run metadata), the .qml styles, the class map and scores, the
JSON report, band selection, option errors, config files, odd georeferencing (polar,
geographic, sinusoidal, rotated, none), tiny and empty rasters, thread independence and,
most importantly, that every tile of the mosaic equals `geolrp relevance` on that tile.

Run: /usr/bin/python3 tests/python/test_scene.py --geolrp build/geolrp
(or GEOLRP=build/geolrp; the default is build/geolrp of this repository)
"""

import json
import math
import os
import re
import shutil
import sys
import tempfile
import unittest
import warnings

import numpy as np
from osgeo import gdal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scene_testlib as L  # noqa: E402

TILE = 32
REL_TOL = 1e-5          # per-tile consistency: max|diff| <= REL_TOL * max|R_ref|
L8_BANDS = ['B1_coastal', 'B2_blue', 'B3_green', 'B4_red', 'B5_nir', 'B6_swir1',
            'B7_swir2', 'B9_cirrus', 'B10_tir1', 'B11_tir2']
L8_CLASSES = ['water', 'land', 'cloud']
RUN_META = ['GEOLRP_MODEL', 'GEOLRP_MODEL_SHA256', 'GEOLRP_COMPOSITE', 'GEOLRP_RULES',
            'GEOLRP_TARGET', 'GEOLRP_INIT', 'GEOLRP_TILE', 'GEOLRP_STRIDE', 'GEOLRP_BLEND',
            'GEOLRP_VERSION', 'GEOLRP_INPUT']

TMP = None
MODELS = {}


def setUpModule():
    global TMP
    # missing inputs are errors, not skips: CI has both
    for p in (L.LANDSAT8, L.S2_160, L.S2_900, L.RGB_BYTE):
        if not os.path.exists(p):
            raise RuntimeError('test raster not found: %s (expected ../shared/data relative '
                               'to the repository)' % p)
    if not os.access(L.binary(), os.X_OK):
        raise RuntimeError('no geolrp binary at %s (use --geolrp PATH or GEOLRP=PATH)'
                           % L.binary())
    TMP = tempfile.mkdtemp(prefix='geolrp_scene_')
    d = os.path.join(TMP, 'models')
    os.makedirs(d)
    specs = {
        'l8': dict(channels=10, classes=3, seed=1, class_names=L8_CLASSES),
        'l8_2band': dict(channels=2, classes=2, seed=2, class_names=['dry', 'wet']),
        'rgb': dict(channels=3, classes=2, seed=3, class_names=['bare', 'vegetated']),
        's2': dict(channels=13, classes=2, seed=4),
    }
    for name, kw in specs.items():
        MODELS[name] = os.path.join(d, name + '.onnx')
        L.make_cnn(MODELS[name], tile=TILE, **kw)


def tearDownModule():
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


class SceneCase(L.CrashChecks, unittest.TestCase):
    def path(self, name):
        return os.path.join(L.new_workdir(TMP), name)

    def explain(self, scene, model, out=None, extra=(), code=0):
        out = out or self.path('rel.tif')
        res = L.run(['explain', scene, '-m', model, '-o', out] + list(extra))
        self.assertExit(res, code)
        return out, res

    def assertGridKept(self, out, src):
        o = L.Raster(out)
        s = gdal.Open(src)
        self.assertEqual((o.width, o.height), (s.RasterXSize, s.RasterYSize))
        sgt = s.GetGeoTransform(can_return_null=True)
        self.assertEqual(o.gt, sgt, 'geotransform changed: %s -> %s' % (sgt, o.gt))
        ssrs = s.GetSpatialRef()
        self.assertIsNotNone(ssrs)
        self.assertIsNotNone(o.srs, 'output has no CRS')
        self.assertTrue(o.srs.IsSame(ssrs), 'CRS changed:\n%s\n->\n%s'
                        % (ssrs.ExportToProj4(), o.srs.ExportToProj4()))
        return o

    def assertCOG(self, r):
        self.assertEqual(r.image_structure.get('LAYOUT'), 'COG',
                         'not a COG: IMAGE_STRUCTURE %s' % r.image_structure)
        self.assertEqual(r.driver, 'GTiff')
        if min(r.width, r.height) > 512:
            for k, b in enumerate(r.bands):
                self.assertGreater(b['overviews'], 0, 'band %d has no overviews' % (k + 1))


# ------------------------------------------------------------------ a whole Landsat scene ---

class LandsatScene(SceneCase):
    """One full run on the Landsat 8 stack with every output; many checks on it."""

    @classmethod
    def setUpClass(cls):
        d = tempfile.mkdtemp(dir=TMP)
        cls.out = os.path.join(d, 'relevance.tif')
        cls.cls_path = os.path.join(d, 'classes.tif')
        cls.scores_path = os.path.join(d, 'scores.tif')
        cls.report_path = os.path.join(d, 'run.json')
        cls.res = L.run(['explain', L.LANDSAT8, '-m', MODELS['l8'], '-o', cls.out,
                         '--class-map', cls.cls_path, '--scores', cls.scores_path,
                         '--report', cls.report_path])
        cls.files = sorted(os.listdir(d))
        cls.ok = cls.res.code == 0
        if cls.ok:
            cls.r = L.Raster(cls.out)
            cls.c = L.Raster(cls.cls_path)
            cls.s = L.Raster(cls.scores_path)
            with open(cls.report_path) as f:
                cls.report = json.load(f)

    def setUp(self):
        self.assertExit(self.res, 0)

    def test_cog_float32_grid_crs(self):
        r = self.assertGridKept(self.out, L.LANDSAT8)
        self.assertCOG(r)
        for b in r.bands:
            self.assertEqual(b['type'], 'Float32')
            self.assertGreater(b['overviews'], 0)
        info = gdal.Info(self.out)
        self.assertIn('LAYOUT=COG', info)
        self.assertIn('Overviews:', info)

    def test_overviews_are_exact(self):
        # geolrp streams the overviews itself: each pixel is the mean of the full-resolution
        # pixels it covers (relevance, scores) or their most frequent class (class map)
        for path, kind in ((self.out, 'mean'), (self.scores_path, 'mean'),
                           (self.cls_path, 'mode')):
            bad, levels = overview_mismatches(path, kind)
            self.assertEqual(levels, 1, path)  # 627 x 603 with 512-pixel blocks
            self.assertEqual(bad, [], path)

    def test_cogs_validate(self):
        # GDAL's own COG validator, with the full check of every block's position
        from osgeo_utils.samples import validate_cloud_optimized_geotiff as v
        for path in (self.out, self.cls_path, self.scores_path):
            errors, warnings = v.validate(path, full_check=True)[:2]
            self.assertEqual(errors, [], path)

    def test_no_leftover_files(self):
        # the outputs, their styles, and GDAL side-cars of the outputs (the class names of
        # the class map may live in classes.tif.aux.xml); no temporaries
        outputs = ['classes.qml', 'classes.tif', 'relevance.qml', 'relevance.tif', 'run.json',
                   'scores.tif']
        extra = [f for f in self.files if f not in outputs]
        self.assertEqual([f for f in outputs if f not in self.files], [])
        self.assertEqual([f for f in extra if f[:-len('.aux.xml')] not in outputs], [],
                         'unexpected files beside the outputs: %s' % self.files)

    def test_band_descriptions(self):
        self.assertEqual(self.r.descriptions(),
                         ['relevance_total'] + ['relevance_' + n for n in L8_BANDS])

    def test_nan_nodata_and_finite(self):
        for k, b in enumerate(self.r.bands):
            self.assertIsNotNone(b['nodata'], 'band %d: no nodata value' % (k + 1))
            self.assertTrue(math.isnan(b['nodata']), 'band %d nodata %r' % (k + 1, b['nodata']))
        # the Landsat stack has no mask: every pixel is explained
        self.assertTrue(np.all(np.isfinite(self.r.data)), 'non-finite relevance')
        self.assertGreater(np.abs(self.r.data).max(), 0)

    def test_total_is_sum_of_bands(self):
        tot = self.r.data[0].astype(np.float64)
        per = self.r.data[1:].astype(np.float64).sum(0)
        scale = np.abs(tot).max()
        self.assertLessEqual(np.abs(tot - per).max(), 1e-4 * scale)

    def test_statistics(self):
        for k, b in enumerate(self.r.bands):
            md = b['metadata']
            for key in ('STATISTICS_MINIMUM', 'STATISTICS_MAXIMUM', 'STATISTICS_MEAN',
                        'STATISTICS_STDDEV'):
                self.assertIn(key, md, 'band %d lacks %s: %s' % (k + 1, key, md))
            v = self.r.data[k].astype(np.float64)
            scale = max(np.abs(v).max(), 1e-30)
            self.assertAlmostEqual(float(md['STATISTICS_MINIMUM']), v.min(), delta=1e-5 * scale)
            self.assertAlmostEqual(float(md['STATISTICS_MAXIMUM']), v.max(), delta=1e-5 * scale)
            self.assertAlmostEqual(float(md['STATISTICS_MEAN']), v.mean(), delta=1e-5 * scale)
            self.assertAlmostEqual(float(md['STATISTICS_STDDEV']), v.std(), delta=1e-4 * scale)

    def test_run_metadata(self):
        md = self.r.metadata
        for key in RUN_META:
            self.assertIn(key, md, 'missing %s in %s' % (key, sorted(md)))
            self.assertTrue(md[key].strip(), '%s is empty' % key)
        self.assertEqual(md['GEOLRP_MODEL'], os.path.basename(MODELS['l8']))
        self.assertEqual(md['GEOLRP_MODEL_SHA256'], L.sha256_file(MODELS['l8']))
        self.assertEqual(md['GEOLRP_COMPOSITE'], 'epsilon-gamma-box')   # the default
        self.assertEqual(md['GEOLRP_TARGET'], 'predicted')
        self.assertEqual(md['GEOLRP_INIT'], 'logit')
        self.assertEqual(md['GEOLRP_TILE'], str(TILE))
        self.assertEqual(md['GEOLRP_STRIDE'], str(TILE // 2))
        self.assertEqual(md['GEOLRP_BLEND'], 'hann')
        self.assertEqual(md['GEOLRP_INPUT'], L.LANDSAT8)
        self.assertIn('zbox', md['GEOLRP_RULES'])     # epsilon-gamma-box: zbox first
        for key in ('GEOLRP_ZBOX_LOW', 'GEOLRP_ZBOX_HIGH'):
            self.assertEqual(len(md[key].split(',')), 10)

    def test_qml(self):
        q = L.qml_path(self.out)
        self.assertTrue(os.path.exists(q), 'no %s' % q)
        root = L.parse_qml(q)
        rr = L.qml_renderer(root)
        self.assertIsNotNone(rr)
        self.assertEqual(rr.get('type'), 'singlebandpseudocolor')
        self.assertEqual(rr.get('band'), '1')
        items = L.ramp_items(root)
        self.assertIsNotNone(items, 'no colorrampshader')
        self.assertEqual(len(items), 3, items)
        (lo, clo), (mid, cmid), (hi, chi) = items
        self.assertEqual((clo, cmid, chi), ('#2166ac', '#f7f7f7', '#b2182b'))
        self.assertEqual(mid, 0.0)
        self.assertGreater(hi, 0)
        self.assertEqual(lo, -hi)
        p99 = float(np.percentile(np.abs(self.r.data[0][np.isfinite(self.r.data[0])]), 99))
        self.assertLessEqual(abs(hi - p99), 0.05 * p99, 'M = %g, 99th percentile of |band 1| '
                             '= %g' % (hi, p99))

    def test_class_map(self):
        c = self.c
        r = L.Raster(self.out)
        self.assertEqual((c.width, c.height, c.count), (r.width, r.height, 1))
        self.assertEqual(c.gt, r.gt)
        self.assertTrue(c.srs.IsSame(r.srs))
        self.assertCOG(c)
        b = c.bands[0]
        self.assertEqual(b['type'], 'Byte')
        self.assertEqual(b['nodata'], 255)
        self.assertIsNotNone(b['color_table'], 'no colour table')
        self.assertGreaterEqual(len(b['color_table']), 3)
        self.assertEqual(list(b['categories'] or [])[:3], L8_CLASSES)
        vals = np.unique(c.data[0])
        self.assertTrue(set(vals.tolist()) <= {0, 1, 2}, vals)
        q = L.parse_qml(L.qml_path(self.cls_path))
        self.assertEqual(L.qml_renderer(q).get('type'), 'paletted')
        labels = [e.get('label') for e in q.iter('paletteEntry')]
        self.assertEqual(labels, L8_CLASSES)

    def test_scores(self):
        s = self.s
        self.assertEqual((s.width, s.height, s.count), (self.r.width, self.r.height, 1))
        self.assertEqual(s.bands[0]['type'], 'Float32')
        v = s.data[0]
        self.assertTrue(np.all(np.isfinite(v)))
        self.assertGreaterEqual(v.min(), 0.0)
        self.assertLessEqual(v.max(), 1.0)
        # the probability of the argmax class is at least 1/K
        self.assertGreaterEqual(v.min(), 1.0 / 3 - 1e-6)

    def test_report(self):
        rep = self.report
        for key in ('tiles', 'time_seconds', 'class_pixels', 'conservation', 'rules',
                    'warnings'):
            self.assertIn(key, rep)
        t = rep['tiles']
        for key in ('total', 'explained', 'skipped_no_valid_pixel', 'skipped_min_valid'):
            self.assertIn(key, t)
        n = len(L.tile_positions(603, TILE, 16)) * len(L.tile_positions(627, TILE, 16))
        self.assertEqual(t['total'], n)
        self.assertEqual(t['explained'], n)
        self.assertEqual(t['skipped_no_valid_pixel'] + t['skipped_min_valid'], 0)
        self.assertIsInstance(rep['warnings'], list)
        self.assertIsInstance(rep['time_seconds'], (dict, float, int))
        # class counts agree with the class map
        counts = np.bincount(self.c.data[0].ravel(), minlength=256)
        self.assertEqual(rep['class_pixels'], {n: int(counts[k])
                                               for k, n in enumerate(L8_CLASSES)})
        self.assertEqual(sum(rep['class_pixels'].values()), 627 * 603)
        cons = rep['conservation']
        self.assertIsNotNone(cons)
        self.assertEqual(rep['rules']['composite'], 'epsilon-gamma-box')


# ----------------------------------------------------------------- a masked scene (RGB) ---

def overview_blocks(a, f):
    """(H/f, W/f, f*f) blocks of a 2-D array, padded with NaN at the right and bottom."""
    h, w = a.shape
    H, W = -(-h // f), -(-w // f)
    p = np.full((H * f, W * f), np.nan)
    p[:h, :w] = a
    return p.reshape(H, f, W, f).transpose(0, 2, 1, 3).reshape(H, W, f * f)


def overview_mismatches(path, kind):
    """Pixels of every overview level of every band that are not the mean (kind 'mean':
    NaN-aware) or the most frequent class (kind 'mode': 255 is nodata, ties to the lower
    class) of the full-resolution pixels they cover; and the number of levels."""
    ds = gdal.Open(path)
    bad, levels = [], None
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        full = band.ReadAsArray().astype(np.float64)
        levels = band.GetOverviewCount()
        for k in range(levels):
            ov = band.GetOverview(k).ReadAsArray().astype(np.float64)
            blocks = overview_blocks(full, 2 << k)
            if ov.shape != blocks.shape[:2]:
                bad.append((b, k, 'shape %s, expected %s' % (ov.shape, blocks.shape[:2])))
                continue
            if kind == 'mean':
                with warnings.catch_warnings():  # all-NaN blocks: NaN, as expected
                    warnings.simplefilter('ignore', RuntimeWarning)
                    exp = np.nanmean(blocks, axis=2)
                ok = np.where(np.isnan(exp), np.isnan(ov),
                              np.abs(ov - exp) <= 1e-5 * (np.abs(exp) + 1e-30))
            else:
                blocks[blocks == 255] = np.nan
                exp = np.full(blocks.shape[:2], 255.0)
                counts = np.stack([(blocks == c).sum(axis=2) for c in range(255)])
                best = counts.argmax(axis=0)  # first maximum: the lower class
                exp = np.where(counts.max(axis=0) > 0, best, 255)
                ok = ov == exp
            if not ok.all():
                bad.append((b, k, int((~ok).sum())))
    return bad, levels


class MaskedScene(SceneCase):
    """RGB.byte.tif: nodata 0 around the scene edge; NaN exactly there."""

    @classmethod
    def setUpClass(cls):
        d = tempfile.mkdtemp(dir=TMP)
        cls.out = os.path.join(d, 'rgb_rel.tif')
        cls.cls_path = os.path.join(d, 'rgb_cls.tif')
        cls.scores_path = os.path.join(d, 'rgb_scores.tif')
        cls.report_path = os.path.join(d, 'rgb.json')
        cls.res = L.run(['explain', L.RGB_BYTE, '-m', MODELS['rgb'], '-o', cls.out,
                         '--class-map', cls.cls_path, '--scores', cls.scores_path,
                         '--report', cls.report_path, '-q'])
        cls.valid = L.valid_mask(L.RGB_BYTE)

    def setUp(self):
        self.assertExit(self.res, 0)

    def test_grid_and_names(self):
        r = self.assertGridKept(self.out, L.RGB_BYTE)
        self.assertCOG(r)
        self.assertEqual(r.descriptions(), ['relevance_total', 'relevance_band1',
                                            'relevance_band2', 'relevance_band3'])

    def test_overviews_leave_out_nodata(self):
        # blocks half outside the scene's mask average only their valid pixels; blocks
        # entirely outside stay NaN (255 in the class map)
        for path, kind in ((self.out, 'mean'), (self.scores_path, 'mean'),
                           (self.cls_path, 'mode')):
            bad, levels = overview_mismatches(path, kind)
            self.assertEqual(levels, 1, path)
            self.assertEqual(bad, [], path)
        ds = gdal.Open(self.out)  # kept open: its bands die with it
        ov = ds.GetRasterBand(1).GetOverview(0).ReadAsArray()
        blocks = overview_blocks(self.valid.astype(np.float64), 2)
        some = blocks.sum(axis=2)
        self.assertTrue(np.all(np.isnan(ov[some == 0])))
        self.assertTrue(np.all(np.isfinite(ov[some > 0])))
        self.assertGreater(int(((some > 0) & (some < 4)).sum()), 0, 'no partial block tested')

    def test_nan_exactly_where_masked(self):
        self.assertGreater((~self.valid).sum(), 1000)   # the data do have a border
        r = L.Raster(self.out)
        for k in range(r.count):
            nan = np.isnan(r.data[k])
            bad_nan = int((nan & self.valid).sum())
            bad_val = int((~nan & ~self.valid).sum())
            self.assertEqual(bad_val, 0, 'band %d: %d masked pixels have values' % (k + 1,
                                                                                      bad_val))
            self.assertEqual(bad_nan, 0, 'band %d: %d valid pixels are NaN' % (k + 1, bad_nan))
            self.assertTrue(np.all(np.isfinite(r.data[k][self.valid])))

    def test_class_map_and_scores_masked(self):
        c = L.Raster(self.cls_path).data[0]
        s = L.Raster(self.scores_path).data[0]
        self.assertTrue(np.all(c[~self.valid] == 255))
        self.assertTrue(np.all(c[self.valid] < 2))
        self.assertTrue(np.all(np.isnan(s[~self.valid])))
        self.assertTrue(np.all((s[self.valid] >= 0.5 - 1e-6) & (s[self.valid] <= 1)))

    def test_report_counts(self):
        with open(self.report_path) as f:
            rep = json.load(f)
        t = rep['tiles']
        n = len(L.tile_positions(718, TILE, 16)) * len(L.tile_positions(791, TILE, 16))
        self.assertEqual(t['total'], n)
        self.assertGreater(t['skipped_no_valid_pixel'], 0, t)
        self.assertEqual(t['skipped_min_valid'], 0)
        self.assertEqual(t['explained'] + t['skipped_no_valid_pixel'], n)
        self.assertEqual(sum(rep['class_pixels'].values()), int(self.valid.sum()))

    def test_statistics_ignore_nan(self):
        r = L.Raster(self.out)
        v = r.data[0][self.valid].astype(np.float64)
        md = r.bands[0]['metadata']
        scale = np.abs(v).max()
        self.assertAlmostEqual(float(md['STATISTICS_MEAN']), v.mean(), delta=1e-5 * scale)
        self.assertAlmostEqual(float(md['STATISTICS_MINIMUM']), v.min(), delta=1e-5 * scale)

    def test_qml_with_nodata(self):
        root = L.parse_qml(L.qml_path(self.out))
        self.assertEqual(L.qml_renderer(root).get('type'), 'singlebandpseudocolor')
        items = L.ramp_items(root)
        hi = items[-1][0]
        r = L.Raster(self.out).data[0]
        p99 = float(np.percentile(np.abs(r[np.isfinite(r)]), 99))
        self.assertLessEqual(abs(hi - p99), 0.05 * p99, 'M %g vs p99 %g' % (hi, p99))
        self.assertEqual(items[0][0], -hi)

    def test_nan_pixels_are_masked(self):
        # a Float32 scene without a nodata value: its NaN pixels are nodata
        x = L.read_array(L.S2_900)[:, 10:74, 20:116].copy()
        x[:, 5:25, 40:70] = np.nan            # a hole, all bands
        x[3, 50, 10] = np.nan                 # one band only
        gtd = gdal.Open(L.S2_900)
        gt = list(gtd.GetGeoTransform())
        gt[0] += 20 * gt[1]
        gt[3] += 10 * gt[5]
        src = L.write_array(self.path('nan.tif'), x, gt=gt, wkt=gtd.GetProjectionRef(),
                            dtype=gdal.GDT_Float32)
        gtd = None
        out, _ = self.explain(src, MODELS['s2'], extra=['-q'])
        r = L.Raster(out)
        invalid = np.isnan(x).any(0)
        for k in range(r.count):
            self.assertTrue(np.array_equal(np.isnan(r.data[k]), invalid),
                            'band %d: NaN pattern differs from the NaN pixels of the input'
                            % (k + 1))

    def test_min_valid(self):
        # a corner crop: its tiles range from empty to full
        src = L.crop(L.RGB_BYTE, self.path('corner.tif'), 0, 0, 160, 160)
        valid = L.valid_mask(src)
        rep_p = self.path('mv.json')
        out, _ = self.explain(src, MODELS['rgb'], extra=['--min-valid', '0.9', '--report',
                                                         rep_p, '-q'])
        with open(rep_p) as f:
            t = json.load(f)['tiles']
        self.assertGreater(t['skipped_min_valid'], 0, t)
        self.assertEqual(t['explained'] + t['skipped_min_valid'] + t['skipped_no_valid_pixel'],
                         t['total'])
        r = L.Raster(out)
        self.assertTrue(np.all(np.isnan(r.data[:, ~valid])), 'values at masked pixels')


# ------------------------------------------------------------------- options and errors ---

class Options(SceneCase):
    @classmethod
    def setUpClass(cls):
        d = tempfile.mkdtemp(dir=TMP)
        cls.crop = L.crop(L.LANDSAT8, os.path.join(d, 'l8crop.tif'), 200, 180, 112, 80)

    def test_bands_by_name_and_index(self):
        a, _ = self.explain(self.crop, MODELS['l8_2band'], extra=['--bands', 'B4_red,B5_nir',
                                                                  '-q'])
        b, _ = self.explain(self.crop, MODELS['l8_2band'], extra=['--bands', '4,5', '-q'])
        ra, rb = L.Raster(a), L.Raster(b)
        self.assertEqual(ra.descriptions(), ['relevance_total', 'relevance_B4_red',
                                             'relevance_B5_nir'])
        self.assertEqual(rb.descriptions(), ra.descriptions())
        self.assertTrue(L.arrays_equal_nan(ra.data, rb.data), 'by name != by index')
        self.assertTrue(np.all(np.isfinite(ra.data)))

    def test_bands_select_the_right_bands(self):
        # --bands 4,5 of the 10-band file == a 2-band copy of bands 4 and 5 (same explicit
        # zbox bounds for both, so that only the band selection is compared)
        two = L.crop(L.LANDSAT8, self.path('b45.tif'), 200, 180, 112, 80, bands=[4, 5])
        bounds = ['--low', '0,0', '--high', '30000,30000', '-q']
        a, _ = self.explain(self.crop, MODELS['l8_2band'], extra=['--bands', '4,5'] + bounds)
        c, _ = self.explain(two, MODELS['l8_2band'], extra=bounds)
        ra, rc = L.Raster(a), L.Raster(c)
        self.assertTrue(L.arrays_equal_nan(ra.data, rc.data), '--bands 4,5 != a copy of 4, 5')
        self.assertTrue(np.any(ra.data != 0))

    def test_zbox_bounds_contain_the_data(self):
        # Default zbox bounds come from the band ranges: every pixel must lie inside them
        # (the zbox rule is only defined for low <= x <= high). This crop is tiled in small
        # blocks, where GDAL's approximate min/max (sampling) misses the extremes.
        out, _ = self.explain(self.crop, MODELS['l8'], extra=['-q'])
        md = L.Raster(out).metadata
        low = np.array([float(v) for v in md['GEOLRP_ZBOX_LOW'].split(',')])
        high = np.array([float(v) for v in md['GEOLRP_ZBOX_HIGH'].split(',')])
        x = L.read_array(self.crop).reshape(10, -1)
        bad = [(L8_BANDS[k], float(low[k]), float(high[k]), float(x[k].min()), float(x[k].max()))
               for k in range(10) if low[k] > x[k].min() or high[k] < x[k].max()]
        self.assertEqual(bad, [], 'zbox bounds (band, low, high) exclude data (min, max): %s'
                         % bad)

    def test_creation_options(self):
        # Default DEFLATE; --co reaches GDAL's COG driver for every raster output and only
        # changes the encoding, never the values; options GDAL refuses stop the run first.
        a, _ = self.explain(self.crop, MODELS['l8'], extra=['-q', '--class-map',
                                                            self.path('ca.tif')])
        self.assertEqual(L.Raster(a).image_structure.get('COMPRESSION'), 'DEFLATE')
        cls = self.path('cz.tif')
        b, _ = self.explain(self.crop, MODELS['l8'], extra=[
            '-q', '--co', 'COMPRESS=ZSTD', '--co', 'BLOCKSIZE=256', '--class-map', cls])
        rb = L.Raster(b)
        self.assertEqual(rb.image_structure.get('COMPRESSION'), 'ZSTD')
        self.assertEqual(L.Raster(cls).image_structure.get('COMPRESSION'), 'ZSTD')
        self.assertCOG(rb)
        self.assertTrue(L.arrays_equal_nan(L.Raster(a).data, rb.data), '--co changed values')
        for bad in ('COMPRESS=NOPE', 'NO_SUCH_OPTION=1', 'NOEQUALS', '=1'):
            out = self.path('bad.tif')
            _, res = self.explain(self.crop, MODELS['l8'], out=out, extra=['--co', bad],
                                  code=2)
            self.assertIn('--co', res.stderr)
            self.assertEqual(os.listdir(os.path.dirname(out)), [], bad)

    def test_overview_options(self):
        # geolrp makes the overview levels the COG options ask for, exactly; another
        # resampling is left to GDAL; OVERVIEWS=NONE makes none. Values never change.
        runs = {}
        for name, co in (('default', []), ('two', ['OVERVIEW_COUNT=2']),
                         ('gdal', ['OVERVIEW_COUNT=1', 'OVERVIEW_RESAMPLING=NEAREST']),
                         ('none', ['OVERVIEWS=NONE', 'OVERVIEW_COUNT=2'])):
            extra = ['-q', '--class-map', self.path('c.tif')]
            for c in co:
                extra += ['--co', c]
            out, _ = self.explain(self.crop, MODELS['l8'], extra=extra)
            runs[name] = out
            # the class map gets the same levels, exact modes unless GDAL makes them
            bad, levels = overview_mismatches(extra[2], 'mode')
            self.assertEqual(levels, overview_mismatches(out, 'mean')[1], name)
            if name != 'gdal':
                self.assertEqual(bad, [], name)
        self.assertEqual(overview_mismatches(runs['default'], 'mean'), ([], 0))  # 112 x 80
        self.assertEqual(overview_mismatches(runs['two'], 'mean'), ([], 2))
        self.assertEqual(overview_mismatches(runs['none'], 'mean'), ([], 0))
        bad, levels = overview_mismatches(runs['gdal'], 'mean')
        self.assertEqual(levels, 1)
        self.assertNotEqual(bad, [], 'GDAL nearest-neighbour overviews equal exact means?')
        full = L.Raster(runs['default']).data
        for name, out in runs.items():
            self.assertTrue(L.arrays_equal_nan(L.Raster(out).data, full), name)
            self.assertCOG(L.Raster(out))
        # nearest neighbour: every overview pixel is one of the four it covers
        ds = gdal.Open(runs['gdal'])
        b = ds.GetRasterBand(2)
        ov, blocks = b.GetOverview(0).ReadAsArray(), overview_blocks(b.ReadAsArray(), 2)
        self.assertTrue(np.all(np.any(blocks == ov[..., None], axis=2) | np.isnan(ov)))

    def test_zbox_bounds_are_the_band_ranges(self):
        # The default zbox bounds are the exact band ranges (each band's nodata value left
        # out, as GDALComputeRasterMinMax does), found in one pass over all bands, plus
        # the fill value (0 here: the model takes raw values).
        # Small pixel-interleaved tiles, and one band-interleaved strip for the whole file.
        for layout in (['TILED=YES', 'BLOCKXSIZE=16', 'BLOCKYSIZE=16', 'INTERLEAVE=PIXEL'],
                       ['BLOCKYSIZE=80', 'INTERLEAVE=BAND']):
            self.check_band_ranges(layout)

    def check_band_ranges(self, layout):
        nod = self.path('nodata.tif')
        ds = gdal.Translate(nod, self.crop, creationOptions=layout)
        b1 = ds.GetRasterBand(1)
        a = b1.ReadAsArray()
        b1.SetNoDataValue(float(a.max()))  # band 1's largest value becomes its nodata
        ds = None
        out, _ = self.explain(nod, MODELS['l8'], extra=['-q'])
        md = L.Raster(out).metadata
        self.assertEqual(md.get('GEOLRP_ZBOX_SOURCE', 'band minimum and maximum'),
                         'band minimum and maximum')
        low = [float(v) for v in md['GEOLRP_ZBOX_LOW'].split(',')]
        high = [float(v) for v in md['GEOLRP_ZBOX_HIGH'].split(',')]
        ds = gdal.Open(nod)
        for k in range(10):
            mn, mx = ds.GetRasterBand(k + 1).ComputeRasterMinMax(False)
            self.assertAlmostEqual(low[k], min(mn, 0.0), delta=1e-6 * abs(mn), msg=L8_BANDS[k])
            self.assertAlmostEqual(high[k], max(mx, 0.0), delta=1e-6 * abs(mx), msg=L8_BANDS[k])
        self.assertLess(high[0], float(a.max()), 'band 1 nodata counted in its range')

    def test_band_order_matters(self):
        a, _ = self.explain(self.crop, MODELS['l8_2band'], extra=['--bands', '5,4', '-q'])
        r = L.Raster(a)
        self.assertEqual(r.descriptions(), ['relevance_total', 'relevance_B5_nir',
                                            'relevance_B4_red'])

    def test_band_count_mismatch(self):
        out = self.path('mismatch.tif')
        _, res = self.explain(self.crop, MODELS['l8_2band'], out=out, code=2)
        for n in L8_BANDS:
            self.assertIn(n, res.stderr, 'message does not list the bands: %r' % res)
        self.assertEqual(os.listdir(os.path.dirname(out)), [])

    def test_unknown_band(self):
        out = self.path('unknown.tif')
        _, res = self.explain(self.crop, MODELS['l8_2band'], out=out,
                              extra=['--bands', 'B4_red,B99_nope'], code=2)
        self.assertIn('B99_nope', res.stderr)
        self.assertIn('B5_nir', res.stderr)
        self.assertFalse(os.path.exists(out))

    def test_tile_mismatch(self):
        out = self.path('tile.tif')
        _, res = self.explain(self.crop, MODELS['l8'], out=out, extra=['--tile', '16'], code=2)
        self.assertTrue(res.stderr.strip())
        self.assertFalse(os.path.exists(out))
        self.explain(self.crop, MODELS['l8'], extra=['--tile', str(TILE), '-q'])

    def test_stride_zero_and_too_large(self):
        for s in ('0', str(TILE + 1), '-3'):
            out = self.path('stride.tif')
            _, res = self.explain(self.crop, MODELS['l8'], out=out, extra=['--stride', s],
                                  code=2)
            self.assertTrue(res.stderr.strip())
            self.assertFalse(os.path.exists(out))

    def test_existing_output_refused(self):
        out, _ = self.explain(self.crop, MODELS['l8'], extra=['-q'])
        before = L.sha256_file(out)
        mtime = os.stat(out).st_mtime_ns
        qml_before = L.sha256_file(L.qml_path(out))
        _, res = self.explain(self.crop, MODELS['l8'], out=out, extra=['--blend', 'uniform'],
                              code=2)
        self.assertIn(out, res.stderr)
        self.assertEqual(L.sha256_file(out), before)
        self.assertEqual(os.stat(out).st_mtime_ns, mtime)
        self.assertEqual(L.sha256_file(L.qml_path(out)), qml_before)
        # any existing file, not only a previous output, and any of the outputs
        junk = self.path('junk.tif')
        with open(junk, 'wb') as f:
            f.write(b'not a raster')
        new = self.path('new.tif')
        for out_path, extra in ((junk, []), (new, ['--report', junk])):
            self.explain(self.crop, MODELS['l8'], out=out_path, extra=extra, code=2)
            with open(junk, 'rb') as f:
                self.assertEqual(f.read(), b'not a raster')
        self.assertFalse(os.path.exists(new))
        # --overwrite replaces it
        self.explain(self.crop, MODELS['l8'], out=out, extra=['--blend', 'uniform',
                                                              '--overwrite', '-q'])
        self.assertEqual(L.Raster(out).metadata['GEOLRP_BLEND'], 'uniform')

    def test_target_all(self):
        out, _ = self.explain(self.crop, MODELS['l8'], extra=['--target', 'all', '-q'])
        r = L.Raster(out)
        self.assertEqual(r.descriptions(), ['relevance_' + n for n in L8_CLASSES])
        self.assertEqual(r.metadata['GEOLRP_TARGET'], 'all')
        self.assertTrue(np.all(np.isfinite(r.data)))
        for b in r.bands:
            self.assertEqual(b['type'], 'Float32')
        # each class band equals the total of an explicit --target k run
        for k in range(3):
            o, _ = self.explain(self.crop, MODELS['l8'], extra=['--target', str(k), '-q'])
            t = L.Raster(o).data[0]
            scale = np.abs(t).max()
            self.assertLessEqual(np.abs(r.data[k] - t).max(), 1e-5 * scale,
                                 'class %d band of --target all != --target %d total' % (k, k))

    def test_target_name_equals_index(self):
        a, _ = self.explain(self.crop, MODELS['l8'], extra=['--target', 'land', '-q'])
        b, _ = self.explain(self.crop, MODELS['l8'], extra=['--target', '1', '-q'])
        ra, rb = L.Raster(a), L.Raster(b)
        self.assertTrue(L.arrays_equal_nan(ra.data, rb.data))
        self.assertIn('land', ra.metadata['GEOLRP_TARGET'])
        self.assertIn('1', ra.metadata['GEOLRP_TARGET'])
        _, res = self.explain(self.crop, MODELS['l8'], extra=['--target', 'snow'], code=2)
        _, res = self.explain(self.crop, MODELS['l8'], extra=['--target', '3'], code=2)

    def test_init_and_blend_metadata(self):
        out, _ = self.explain(self.crop, MODELS['l8'], extra=['--init', 'prob', '--blend',
                                                              'center', '--stride', '8', '-q'])
        md = L.Raster(out).metadata
        self.assertEqual(md['GEOLRP_INIT'], 'prob')
        self.assertEqual(md['GEOLRP_BLEND'], 'center')
        self.assertEqual(md['GEOLRP_STRIDE'], '8')

    def test_classify_matches_explain_class_map(self):
        cm = self.path('cm.tif')
        sc = self.path('sc.tif')
        self.explain(self.crop, MODELS['l8'], extra=['--class-map', cm, '--scores', sc, '-q'])
        cl = self.path('classify.tif')
        sc2 = self.path('sc2.tif')
        res = L.run(['classify', self.crop, '-m', MODELS['l8'], '-o', cl, '--scores', sc2,
                     '-q'])
        self.assertExit(res, 0)
        a, b = L.Raster(cm), L.Raster(cl)
        self.assertEqual(b.bands[0]['type'], 'Byte')
        self.assertCOG(b)
        self.assertTrue(np.array_equal(a.data, b.data), 'classify != explain --class-map')
        self.assertTrue(L.arrays_equal_nan(L.Raster(sc).data, L.Raster(sc2).data))
        self.assertEqual(L.qml_renderer(L.parse_qml(L.qml_path(cl))).get('type'), 'paletted')
        self.assertEqual(list(b.bands[0]['categories'])[:3], L8_CLASSES)

    def test_threads_bit_identical(self):
        src = L.crop(L.S2_160, self.path('s2crop.tif'), 100, 60, 240, 200)
        outs = []
        for t in ('1', '2'):
            o, _ = self.explain(src, MODELS['s2'], extra=['--threads', t, '--batch', '8',
                                                          '--class-map', self.path('c.tif'),
                                                          '-q'])
            outs.append(L.Raster(o).data)
        self.assertTrue(L.arrays_equal_nan(outs[0], outs[1]),
                        '--threads 1 and 2 differ: max |diff| %g'
                        % np.nanmax(np.abs(outs[0].astype(np.float64) - outs[1])))


# ------------------------------------------------- mosaic == geolrp relevance per tile ---

class TileConsistency(SceneCase):
    """With stride = tile and uniform blending every tile's block of the mosaic must be
    exactly what `geolrp relevance` gives for that tile's array."""

    @classmethod
    def setUpClass(cls):
        d = tempfile.mkdtemp(dir=TMP)
        cls.dir = d
        # 3 x 2 tiles of 32 px, all ten bands; raw DN (UInt16, no scale/offset)
        cls.crop = L.crop(L.LANDSAT8, os.path.join(d, 'grid.tif'), 300, 250, 3 * TILE,
                          2 * TILE)
        cls.x = L.read_array(cls.crop)

    def run_pair(self, x_model_units, extra, model=None, name='t', scene=None, tile=None,
                 stride=None, classes=True, blend='uniform'):
        """explain SCENE (default: the 3 x 2 tile crop) with uniform blending at STRIDE
        (default: the tile), then `geolrp relevance` on every tile of X (the scene in model
        units) with the bounds the run reported; compares the mosaic with the average of
        the tiles covering each pixel (with stride = tile: each tile's block), and the class
        map and scores with the argmax of the averaged softmax of the tile scores."""
        model = model or MODELS['l8']
        scene = scene or self.crop
        th, tw = tile or (TILE, TILE)
        # stride: a number (--stride), or None: the default (half the tile) when blending,
        # else the tile (no overlap)
        if stride is None and blend == 'uniform':
            stride = th
        sy, sx = (stride, stride) if stride else (max(th // 2, 1), max(tw // 2, 1))
        cm, sc = self.path('cm.tif'), self.path('sc.tif')
        opts = (['--stride', str(stride)] if stride else []) + ['--blend', blend, '-q']
        opts += list(extra)
        if classes:
            opts += ['--class-map', cm, '--scores', sc]
        out, res = self.explain(scene, model, extra=opts)
        r = L.Raster(out)
        md = r.metadata
        if 'zbox' in md['GEOLRP_RULES']:
            self.assertIn('GEOLRP_ZBOX_LOW', md)
            self.assertIn('GEOLRP_ZBOX_HIGH', md)
        tiles = L.tiles_of(x_model_units, th, tw, sy, sx)
        X = np.stack([t for _, _, t in tiles]).astype(np.float32)
        rel_extra = ['--composite', md['GEOLRP_COMPOSITE']]
        if 'GEOLRP_ZBOX_LOW' in md:
            rel_extra += ['--low', md['GEOLRP_ZBOX_LOW'], '--high', md['GEOLRP_ZBOX_HIGH']]
        for opt in ('--target', '--init'):   # relevance takes class indices only
            if opt in extra:
                rel_extra += [opt, extra[extra.index(opt) + 1]]
        R, S, res = L.relevance(model, X, L.new_workdir(TMP), name, rel_extra)
        self.assertExit(res, 0)
        self.assertEqual(R.shape, X.shape)
        scale = np.abs(R).max()
        self.assertGreater(scale, 0)
        H, W = x_model_units.shape[1:]
        vals = [np.concatenate([Ri.astype(np.float64).sum(0)[None], Ri]) for Ri in R]
        wts = None if blend == 'uniform' else L.blend_weights(blend, (th, tw), (sy, sx))
        want = L.blended_mosaic(tiles, vals, H, W, wts)
        self.assertEqual(r.data.shape, want.shape)
        diff = np.abs(r.data.astype(np.float64) - want)
        self.assertFalse(np.any(np.isnan(r.data)), 'NaN in the mosaic')
        err = diff.max()
        if not err <= REL_TOL * scale:
            b, y, x = np.unravel_index(np.argmax(diff), diff.shape)
            self.fail('mosaic != geolrp relevance per tile: max |diff| %.3e = %.3e x max|R|, '
                      'at band %d row %d col %d: mosaic %.8g, expected %.8g; %d of %d values '
                      'off by more than %g x max|R|'
                      % (err, err / scale, b + 1, y, x, r.data[b, y, x], want[b, y, x],
                         int((diff > REL_TOL * scale).sum()), diff.size, REL_TOL))
        if classes:
            P = L.softmax(S)
            if P.shape[1] == 1:
                p1 = 1 / (1 + np.exp(-S[:, 0].astype(np.float64)))
                P = np.stack([1 - p1, p1], 1)
            pv = [np.broadcast_to(p[:, None, None], (len(p), th, tw)) for p in P]
            pm = L.blended_mosaic(tiles, pv, H, W, wts)
            srt = np.sort(pm, axis=0)
            clear = (srt[-1] - srt[-2]) > 1e-5          # ignore near-ties
            cls = L.Raster(cm).data[0]
            self.assertTrue(np.array_equal(cls[clear], pm.argmax(0)[clear]),
                            'class map != argmax of the averaged tile probabilities at %d '
                            'pixels' % int((cls[clear] != pm.argmax(0)[clear]).sum()))
            sco = L.Raster(sc).data[0]
            self.assertLessEqual(np.abs(sco - pm.max(0)).max(), 1e-5,
                                 'scores != probability of the mapped class')
        return r, R, S

    def test_overlapping_tiles_and_edges(self):
        # 100 x 70: not a multiple of the tile, half-tile stride; the last tiles sit flush
        # with the right and bottom edges
        src = L.crop(L.LANDSAT8, self.path('edges.tif'), 310, 240, 100, 70)
        self.run_pair(L.read_array(src), [], scene=src, stride=TILE // 2)

    def test_hann_blending(self):
        # the default blending: a weighted average with the documented Hann window
        src = L.crop(L.LANDSAT8, self.path('hann.tif'), 310, 240, 100, 70)
        self.run_pair(L.read_array(src), [], scene=src, stride=TILE // 2, blend='hann')

    def test_center_blending(self):
        src = L.crop(L.LANDSAT8, self.path('center.tif'), 310, 240, 100, 70)
        self.run_pair(L.read_array(src), [], scene=src, stride=TILE // 4, blend='center')

    def test_rectangular_tiles(self):
        # a model taking 16 x 32 tiles: stride 16 -> no overlap in y, half overlap in x
        model = self.path('rect.onnx')
        L.make_cnn(model, 10, tile=(16, 32), classes=3, seed=5, class_names=L8_CLASSES)
        r, _, _ = self.run_pair(self.x, [], model=model, tile=(16, 32), stride=16)
        self.assertEqual(r.metadata['GEOLRP_TILE'][:2], '16')

    def test_rectangular_tiles_default_hann(self):
        # default stride (half the tile per axis: 8 rows, 16 columns) and Hann blending
        model = self.path('rect2.onnx')
        L.make_cnn(model, 10, tile=(16, 32), classes=2, seed=6)
        src = L.crop(L.LANDSAT8, self.path('rect_edges.tif'), 100, 400, 90, 50)
        self.run_pair(L.read_array(src), [], model=model, scene=src, tile=(16, 32),
                      stride=None, blend='hann')

    def test_gdal_scale_offset(self):
        # band scale/offset are applied (raw * scale + offset) before the model sees values
        src = L.translate(self.crop, self.path('scaled.tif'))
        ds = gdal.Open(src, gdal.GA_Update)
        for k in range(ds.RasterCount):
            ds.GetRasterBand(k + 1).SetScale(2e-5 * (k + 1))
            ds.GetRasterBand(k + 1).SetOffset(-0.1 * k)
        ds = None
        k = np.arange(10, dtype=np.float64)[:, None, None]
        xs = (self.x.astype(np.float64) * 2e-5 * (k + 1) - 0.1 * k).astype(np.float32)
        self.run_pair(xs, [], scene=src)

    def test_default_rules_raw_values(self):
        r, R, _ = self.run_pair(self.x, [])
        self.assertEqual(r.metadata['GEOLRP_COMPOSITE'], 'epsilon-gamma-box')
        self.assertEqual(r.metadata.get('GEOLRP_NORMALIZATION', 'none'), 'none')

    def test_target_index_init_one(self):
        self.run_pair(self.x, ['--target', '0', '--init', 'one'])

    def test_init_prob(self):
        self.run_pair(self.x, ['--init', 'prob'])

    def test_other_composite(self):
        self.run_pair(self.x, ['--composite', 'epsilon-plus', '--init', 'one'])

    def config(self, obj, text=None):
        p = self.path('cfg.json')
        with open(p, 'w') as f:
            f.write(text if text is not None else json.dumps(obj, indent=2))
        return p

    def test_config_standardize(self):
        mean = [float(v) for v in self.x.reshape(10, -1).mean(1).round(1)]
        std = [float(v) for v in (self.x.reshape(10, -1).std(1) + 1.0).round(2)]
        cfg = self.config({'normalization': {'mode': 'standardize', 'mean': mean, 'std': std},
                           'fill_value': 0})
        m = np.array(mean, np.float64)[:, None, None]
        s = np.array(std, np.float64)[:, None, None]
        xn = ((self.x.astype(np.float64) - m) / s).astype(np.float32)
        r, R, _ = self.run_pair(xn, ['--config', cfg], name='cfg')
        raw = self.run_pair(self.x, [], name='raw')[0]
        self.assertFalse(np.allclose(r.data, raw.data), 'the config changed nothing')

    def test_metadata_standardize(self):
        mean = [float(v) for v in self.x.reshape(10, -1).mean(1).round(1)]
        std = [float(v) for v in (self.x.reshape(10, -1).std(1) + 1.0).round(2)]
        model = self.path('meta_norm.onnx')
        L.make_cnn(model, 10, tile=TILE, classes=3, seed=1, class_names=L8_CLASSES,
                   metadata={'standardization_mean': json.dumps(mean),
                             'standardization_std': json.dumps(std)})
        m = np.array(mean, np.float64)[:, None, None]
        s = np.array(std, np.float64)[:, None, None]
        xn = ((self.x.astype(np.float64) - m) / s).astype(np.float32)
        self.run_pair(xn, [], model=model, name='meta')

    def test_config_unknown_key(self):
        text = ('{\n'
                '  "description": "test",\n'
                '  "fill_value": 0,\n'
                '  "normalisation": {"mode": "none"}\n'
                '}\n')
        cfg = self.config(None, text)
        out = self.path('o.tif')
        _, res = self.explain(self.crop, MODELS['l8'], out=out, extra=['--config', cfg], code=2)
        self.assertRegex(res.stderr, re.escape(cfg) + r':4\b')
        self.assertIn('normalisation', res.stderr)
        self.assertFalse(os.path.exists(out))
        # nested
        text = ('{\n'
                '  "normalization": {\n'
                '    "mode": "standardize",\n'
                '    "mean": 0, "std": 1,\n'
                '    "sdt": 2\n'
                '  }\n'
                '}\n')
        cfg = self.config(None, text)
        _, res = self.explain(self.crop, MODELS['l8'], out=out, extra=['--config', cfg], code=2)
        self.assertRegex(res.stderr, re.escape(cfg) + r':5\b')

    def test_config_syntax_error(self):
        text = ('{\n'
                '  "fill_value": 0,\n'
                '  "tile": 32\n'
                '  "stride": 32\n'
                '}\n')
        cfg = self.config(None, text)
        out = self.path('o.tif')
        _, res = self.explain(self.crop, MODELS['l8'], out=out, extra=['--config', cfg], code=2)
        self.assertRegex(res.stderr, re.escape(cfg) + r':4\b')
        self.assertFalse(os.path.exists(out))


# ------------------------------------------------------------------------ georeferencing ---

class Georeferencing(SceneCase):
    """Sentinel-2 at 900 m (122 x 122, 13 bands) warped and re-gridded."""

    SINU = '+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs'

    def warped(self, srs, name):
        dst = self.path(name)
        ds = gdal.Warp(dst, L.S2_900, dstSRS=srs, format='GTiff')
        ds = None
        return dst

    def check_kept(self, src):
        out, res = self.explain(src, MODELS['s2'], extra=['-q'])
        r = self.assertGridKept(out, src)
        self.assertCOG(r)
        self.assertTrue(np.any(np.isfinite(r.data)))
        return r

    def test_polar_stereographic(self):
        self.check_kept(self.warped('EPSG:3413', 'polar.tif'))

    def test_geographic(self):
        r = self.check_kept(self.warped('EPSG:4326', 'geo.tif'))
        self.assertTrue(r.srs.IsGeographic())

    def test_sinusoidal(self):
        self.check_kept(self.warped(self.SINU, 'sinu.tif'))

    def test_utm_original(self):
        self.check_kept(L.S2_900)

    def test_rotated_geotransform(self):
        dst = L.translate(L.S2_900, self.path('rot.tif'))
        ds = gdal.Open(dst, gdal.GA_Update)
        gt = (399960.0, 780.0, 450.0, 5400000.0, 450.0, -780.0)
        ds.SetGeoTransform(gt)
        ds = None
        self.assertEqual(gdal.Open(dst).GetGeoTransform(), gt)
        r = self.check_kept(dst)
        self.assertEqual(r.gt, gt)

    def test_no_georeferencing(self):
        arr = L.read_array(L.S2_900).astype(np.uint16)
        src = L.write_array(self.path('plain.tif'), arr)
        ds = gdal.Open(src)
        self.assertIsNone(ds.GetGeoTransform(can_return_null=True))
        self.assertIsNone(ds.GetSpatialRef())
        ds = None
        rep = self.path('plain.json')
        out, res = self.explain(src, MODELS['s2'], extra=['--report', rep])
        self.assertIn('warning', res.stderr.lower())
        r = L.Raster(out)
        self.assertEqual((r.width, r.height), (122, 122))
        self.assertIsNone(r.srs, 'a CRS appeared: %s' % r.wkt)
        self.assertIn(r.gt, (None, (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)))
        self.assertTrue(np.all(np.isfinite(r.data)))
        with open(rep) as f:
            self.assertTrue(json.load(f)['warnings'])
        # same pixels as the georeferenced file
        g, _ = self.explain(L.S2_900, MODELS['s2'], extra=['-q'])
        self.assertTrue(L.arrays_equal_nan(L.Raster(g).data, r.data))

    def test_smaller_than_a_tile(self):
        src = L.crop(L.S2_900, self.path('tiny.tif'), 50, 40, 20, 20)
        rep = self.path('tiny.json')
        out, res = self.explain(src, MODELS['s2'], extra=['--report', rep])
        self.assertIn('warning', res.stderr.lower())
        r = self.assertGridKept(out, src)
        self.assertEqual((r.width, r.height, r.count), (20, 20, 14))
        self.assertTrue(np.all(np.isfinite(r.data)))
        with open(rep) as f:
            j = json.load(f)
        self.assertTrue(j['warnings'])
        self.assertEqual(j['tiles']['total'], 1)
        self.assertEqual(j['tiles']['explained'], 1)
        # the one tile is the raster padded with the fill value (0 by default)
        x = np.zeros((1, 13, TILE, TILE), np.float32)
        x[0, :, :20, :20] = L.read_array(src)
        md = r.metadata
        R, _, res = L.relevance(MODELS['s2'], x, os.path.dirname(out), 'tiny',
                                ['--composite', md['GEOLRP_COMPOSITE'], '--low',
                                 md['GEOLRP_ZBOX_LOW'], '--high', md['GEOLRP_ZBOX_HIGH']])
        self.assertExit(res, 0)
        want = R[0, :, :20, :20].astype(np.float64)
        scale = np.abs(R).max()
        self.assertLessEqual(np.abs(r.data[1:] - want).max(), REL_TOL * scale)
        self.assertLessEqual(np.abs(r.data[0] - want.sum(0)).max(), REL_TOL * scale)

    def empty_raster(self):
        src = L.crop(L.S2_900, self.path('empty_src.tif'), 0, 0, 70, 50)
        arr = np.zeros((13, 50, 70), np.uint16)
        ds = gdal.Open(src)
        dst = L.write_array(self.path('empty.tif'), arr, gt=ds.GetGeoTransform(),
                            wkt=ds.GetProjectionRef(), nodata=0)
        ds = None
        return dst

    def check_empty(self, extra):
        dst = self.empty_raster()
        rep = self.path('empty.json')
        cm = self.path('empty_cls.tif')
        out = self.path('empty_rel.tif')
        res = L.run(['explain', dst, '-m', MODELS['s2'], '-o', out, '--report', rep,
                     '--class-map', cm] + extra)
        self.assertNoCrash(res)
        if res.code != 0:
            self.assertEqual(os.listdir(os.path.dirname(out)), [], 'partial outputs left')
        self.assertEqual(res.code, 0, repr(res))
        self.assertIn('warning', res.stderr.lower())
        r = self.assertGridKept(out, dst)
        self.assertTrue(np.all(np.isnan(r.data)))
        self.assertTrue(np.all(L.Raster(cm).data == 255))
        with open(rep) as f:
            j = json.load(f)
        self.assertTrue(j['warnings'])
        self.assertEqual(j['tiles']['explained'], 0)
        self.assertEqual(j['tiles']['skipped_no_valid_pixel'], j['tiles']['total'])

    def test_all_nodata(self):
        # default options: the zbox bounds cannot come from the (empty) band ranges, but
        # the run must still succeed
        self.check_empty([])

    def test_all_nodata_explicit_bounds(self):
        self.check_empty(['--low', '0', '--high', '10000'])


if __name__ == '__main__':
    L.parse_argv()
    unittest.main(verbosity=int(os.environ.get('GEOLRP_TEST_VERBOSITY', '2')))
