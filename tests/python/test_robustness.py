#!/usr/bin/python3
"""Bad input and hostile files on the scene commands (issue 8; docs/robustness.md maps every
row of its table to a test): unopenable and unreadable inputs, GeoTIFFs whose header is fine
but whose data is cut or corrupt, outputs that cannot be written (no folder, a file in the
way, read-only folder or file system, a full disk), NaN and Inf in the data, 1 x 1 and
one-row rasters, south-up and rotated grids, band mismatches and option names.

Every failure must be a clean exit with a message naming what is at fault, leave no output
and no temporary, and leave the input untouched.

Uses the shipped scene and model (data/) only: no torch, fast enough for the sanitizer build.
Run: /usr/bin/python3 tests/python/test_robustness.py --geolrp build/geolrp
"""
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from osgeo import gdal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scene_testlib as L  # noqa: E402

SCENE = os.path.join(L.REPO, 'data', 'landsat8', 'LC80200392015216_10band.tif')
MODEL = os.path.join(L.REPO, 'data', 'models', 'landsat8_cloud.onnx')
TMPFS_RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'tmpfs_run.py')
NOBODY = 65534
TILE = 32   # the shipped model's input size


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


class Case(L.CrashChecks, unittest.TestCase):
    def setUp(self):
        # world-readable: some tests run geolrp as nobody
        self.dir = tempfile.mkdtemp(prefix='geolrp_robust_')
        os.chmod(self.dir, 0o755)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def p(self, *names):
        return os.path.join(self.dir, *names)

    def folder(self, name):
        d = self.p(name)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        return d

    def crop(self, name, x0=200, y0=180, w=96, h=80, **kw):
        return L.translate(SCENE, self.p(name), srcWin=[x0, y0, w, h], **kw)

    def assertFails(self, res, code, *patterns):
        self.assertNoCrash(res)
        self.assertEqual(res.code, code, repr(res))
        self.assertIn('error', res.stderr, repr(res))
        for pat in patterns:
            self.assertRegex(res.stderr, pat, repr(res))

    def assertEmpty(self, folder):
        self.assertEqual(sorted(os.listdir(folder)), [], 'files left in %s' % folder)

    def scene_commands(self, scene, out, model=MODEL):
        """The three scene commands, every output of each into the folder out."""
        o = lambda n: os.path.join(out, n)  # noqa: E731
        return {
            'explain': ['explain', scene, '-m', model, '-o', o('rel.tif'), '--class-map',
                        o('cls.tif'), '--scores', o('p.tif'), '--report', o('run.json'), '-q'],
            'classify': ['classify', scene, '-m', model, '-o', o('cls.tif'), '--scores',
                         o('p.tif'), '-q'],
            'bands': ['bands', scene, '-m', model, '--json', o('b.json'), '--csv', o('b.csv'),
                      '--plot', o('b.svg'), '-q'],
        }


# ----------------------------------------------- missing, unreadable, not a raster / ONNX ---

def as_nobody(args):
    """geolrp run as an unprivileged user (root reads any file whatever its mode)."""
    if os.geteuid() != 0:
        return args
    if not shutil.which('setpriv'):
        raise unittest.SkipTest('running as root without setpriv (util-linux): cannot drop '
                                'privileges to make a file unreadable')
    return ['setpriv', '--reuid=%d' % NOBODY, '--regid=%d' % NOBODY, '--clear-groups'] + args


_NOBODY_DIR = None


def nobody_copy(path):
    """A world-readable copy of path: the repository (binary, shipped model) may lie in a
    folder nobody cannot enter, such as /root."""
    global _NOBODY_DIR
    if _NOBODY_DIR is None:
        _NOBODY_DIR = tempfile.mkdtemp(prefix='geolrp_nobody_')
        os.chmod(_NOBODY_DIR, 0o755)
    dst = os.path.join(_NOBODY_DIR, os.path.basename(path))
    if not os.path.exists(dst):
        shutil.copy2(path, dst)
        os.chmod(dst, 0o755)
    return dst


def tearDownModule():
    if _NOBODY_DIR:
        shutil.rmtree(_NOBODY_DIR, ignore_errors=True)


def run_as_nobody(args):
    args = [str(a) for a in args]
    if os.geteuid() == 0:
        args = [nobody_copy(a) if a == MODEL else a for a in args]
        binary = nobody_copy(L.binary())
    else:
        binary = L.binary()
    proc = subprocess.run(as_nobody([binary] + args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=300)
    return L.Result(proc, args)


class Unopenable(Case):
    """Row 1: missing file, unreadable file, not a raster, not ONNX: exit 2, file and reason."""

    def check(self, scene, model, pattern, run=L.run):
        out = self.folder('out')
        for name, args in self.scene_commands(scene, out, model).items():
            with self.subTest(command=name):
                res = run(args)
                bad = scene if model == MODEL else model
                self.assertFails(res, 2, re.escape(bad), pattern)
                self.assertEmpty(out)

    def test_missing_scene(self):
        self.check(self.p('no_such_scene.tif'), MODEL, r'No such file')

    def test_scene_not_a_raster(self):
        txt = self.p('notes.tif')
        with open(txt, 'w') as f:
            f.write('this is not a raster\n' * 50)
        self.check(txt, MODEL, r'not recognized as a supported file format')

    def test_scene_is_a_folder(self):
        self.check(self.folder('adir'), MODEL, r'not recognized|directory|folder')

    def test_scene_unreadable(self):
        src = self.crop('locked.tif')
        os.chmod(src, 0)
        self.check(src, MODEL, r'(?i)permission denied', run=run_as_nobody)

    def test_missing_model(self):
        self.check(self.crop('c.tif'), self.p('no_such_model.onnx'), r'No such file')

    def test_model_not_onnx(self):
        bad = self.p('model.onnx')
        with open(bad, 'w') as f:
            f.write('{"not": "an onnx model"}\n')
        self.check(self.crop('c.tif'), bad, r'(?i)not a valid ONNX')

    def test_model_is_a_folder(self):
        self.check(self.crop('c.tif'), self.folder('model.onnx'), r'(?i)is a directory')

    def test_model_unreadable(self):
        m = self.p('locked.onnx')
        shutil.copyfile(MODEL, m)
        os.chmod(m, 0)
        self.check(self.crop('c.tif'), m, r'(?i)permission denied', run=run_as_nobody)

    def test_missing_config(self):
        out = self.folder('out')
        cfg = self.p('no_such_config.json')
        res = L.run(['explain', self.crop('c.tif'), '-m', MODEL, '-o',
                     os.path.join(out, 'r.tif'), '--config', cfg, '-q'])
        self.assertFails(res, 2, re.escape(cfg) + r': ', r'No such file')
        self.assertNotIn(':-1', res.stderr)
        self.assertEmpty(out)


# ---------------------------------------------- GeoTIFF with a good header and bad data ---

class CorruptGeoTIFF(Case):
    """Row 2: the header reads, the data does not: exit 1 naming the file and the rows,
    no output and no temporary left, the input untouched."""

    def truncated(self, name, **kw):
        src = self.crop(name, w=160, h=128, **kw)
        size = os.path.getsize(src)
        with open(src, 'r+b') as f:
            f.truncate(int(size * 0.6))
        return src

    def corrupted(self, name):
        """Tiled DEFLATE with garbage in the middle of one compressed block."""
        src = self.crop(name, w=160, h=128, creationOptions=['TILED=YES', 'BLOCKXSIZE=32',
                                                             'BLOCKYSIZE=32',
                                                             'COMPRESS=DEFLATE'])
        ds = gdal.Open(src)
        b = ds.GetRasterBand(1)
        off = int(b.GetMetadataItem('BLOCK_OFFSET_2_2', 'TIFF'))
        n = int(b.GetMetadataItem('BLOCK_SIZE_2_2', 'TIFF'))
        ds = None
        junk = np.random.default_rng(8).integers(0, 256, n // 2, dtype=np.uint8).tobytes()
        with open(src, 'r+b') as f:
            f.seek(off + n // 4)
            f.write(junk)
        return src

    def check(self, src):
        # the premise: GDAL opens the file and knows its size, but cannot read all of it
        ds = gdal.Open(src)
        self.assertEqual((ds.RasterXSize, ds.RasterYSize, ds.RasterCount), (160, 128, 10))
        with self.assertRaises(RuntimeError):
            ds.ReadAsArray()
        ds = None
        before = sha256(src)
        out = self.folder('out')
        for name, args in self.scene_commands(src, out).items():
            with self.subTest(command=name):
                res = L.run(args)
                self.assertFails(res, 1, re.escape(src), r'rows \d+ to \d+')
                self.assertEmpty(out)
                self.assertEqual(sha256(src), before, 'input modified')

    def test_truncated_striped(self):
        self.check(self.truncated('strip.tif'))

    def test_truncated_tiled_deflate(self):
        self.check(self.truncated('tiled.tif', creationOptions=[
            'TILED=YES', 'BLOCKXSIZE=32', 'BLOCKYSIZE=32', 'COMPRESS=DEFLATE']))

    def test_corrupt_block(self):
        self.check(self.corrupted('corrupt.tif'))


# ------------------------------------------------------------ outputs that cannot be written ---

class OutputNotWritable(Case):
    """Row 11 (first half): exit 1 naming the output, nothing written, input untouched."""

    def check(self, args, bad_output, good_folders=(), run=L.run, reason=None):
        src = args[1]
        before = sha256(src)
        res = run(args)
        self.assertFails(res, 1, re.escape(bad_output), *([reason] if reason else []))
        for d in good_folders:
            self.assertEmpty(d)
        self.assertEqual(sha256(src), before, 'input modified')
        return res

    def explain_into(self, src, rel, report):
        return ['explain', src, '-m', MODEL, '-o', rel, '--class-map',
                os.path.join(os.path.dirname(rel), 'cls.tif'), '--report', report, '-q']

    def test_folder_missing(self):
        src = self.crop('c.tif')
        bad = self.p('no_such_folder', 'rel.tif')
        self.check(self.explain_into(src, bad, self.p('no_such_folder', 'r.json')), bad,
                   reason=r'No such file')

    def test_file_in_the_way(self):
        src = self.crop('c.tif')
        bad = os.path.join(src, 'rel.tif')   # "folder" c.tif is a regular file
        self.check(self.explain_into(src, bad, self.p('r.json')), bad,
                   reason=r'not a folder')

    def test_only_the_report_unwritable(self):
        # the report is written last: the run must fail before the work, and the folder
        # that could take the other outputs stays empty
        src = self.crop('c.tif')
        good = self.folder('good')
        bad = self.p('missing', 'run.json')
        self.check(self.explain_into(src, os.path.join(good, 'rel.tif'), bad), bad,
                   good_folders=[good])

    def test_read_only_folder(self):
        src = self.crop('c.tif')
        ro = self.folder('ro')
        os.chmod(ro, 0o555)
        bad = os.path.join(ro, 'rel.tif')
        self.check(self.explain_into(src, bad, os.path.join(ro, 'r.json')), bad,
                   good_folders=[ro], run=run_as_nobody, reason=r'(?i)permission denied')

    def test_relevance_outputs(self):
        x = self.p('x.npy')
        np.save(x, np.random.default_rng(1).normal(size=(3, 10, TILE, TILE)).astype('f4'))
        good = self.folder('good')
        for label, outs in (('array', [self.p('nope', 'r.npy'), None]),
                            ('report', [os.path.join(good, 'r.npy'), self.p('nope', 'j.json')])):
            with self.subTest(unwritable=label):
                args = ['relevance', '-m', MODEL, '-i', x, '-o', outs[0], '--scores',
                        os.path.join(good, 's.npy'), '-q']
                if outs[1]:
                    args += ['--report', outs[1]]
                before = sha256(x)
                res = L.run(args)
                self.assertFails(res, 1, re.escape(outs[1] or outs[0]), r'No such file')
                self.assertEmpty(good)
                self.assertEqual(sha256(x), before)


# --------------------------------------------------------- tmpfs: full disk, read-only mount ---

_LAUNCHER = None


def tmpfs_launcher():
    """How to mount a tmpfs here: directly (root), in a private mount namespace (root in a
    container that refuses mounts in its own), or in a user namespace (unprivileged). None
    when nothing works, with the reasons."""
    global _LAUNCHER
    if _LAUNCHER is not None:
        return _LAUNCHER
    d = tempfile.mkdtemp(prefix='geolrp_mnt_probe_')
    probe = 'mount -t tmpfs -o size=64k tmpfs "$0" && umount "$0"'
    tried = []
    for prefix in ([], ['unshare', '-m'], ['unshare', '-r', '-m']):
        if prefix and not shutil.which('unshare'):
            continue
        p = subprocess.run(prefix + ['sh', '-c', probe, d], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if p.returncode == 0:
            _LAUNCHER = (prefix, None)
            break
        tried.append('%s: %s' % (' '.join(prefix + ['mount']) or 'mount',
                                 p.stdout.decode('utf-8', 'replace').strip()))
    else:
        _LAUNCHER = (None, '; '.join(tried))
    os.rmdir(d)
    return _LAUNCHER


class Tmpfs(Case):
    def setUp(self):
        super().setUp()
        prefix, why = tmpfs_launcher()
        if prefix is None:
            self.skipTest('cannot mount a tmpfs here (%s)' % why)
        self.prefix = prefix

    def on_tmpfs(self, size_kb, copy, cmd, readonly=False):
        """Runs cmd ("{mnt}" = the mount) on a tmpfs of size_kb holding copy [(src, name)]."""
        mnt = self.folder('mnt')   # one path: it is in the outputs' metadata
        spec, result = self.p('spec.json'), self.p('result.json')
        with open(spec, 'w') as f:
            json.dump({'mount': mnt, 'size_kb': size_kb, 'readonly': readonly,
                       'copy': copy, 'cmd': [L.binary()] + cmd}, f)
        p = subprocess.run(self.prefix + [sys.executable, TMPFS_RUN, spec, result],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(p.returncode, 0, p.stdout)
        with open(result) as f:
            r = json.load(f)
        self.assertNotIn('error', r)
        return r

    def assertCleanFailure(self, r, inputs, outputs, reason):
        msg = 'exit %d, files %s\n%s' % (r['code'], sorted(r['files']), r['stderr'][-2000:])
        self.assertEqual(r['code'], 1, msg)
        for m in L.SANITIZER_MARKERS:
            self.assertNotIn(m, r['stderr'], msg)
        self.assertRegex(r['stderr'], r'geolrp: error: .*(%s)' % '|'.join(
            re.escape(o) for o in outputs), msg)
        self.assertRegex(r['stderr'], reason, msg)
        self.assertEqual(r['files'], inputs, 'outputs or temporaries left, or input changed: '
                         + msg)

    def sweep(self, src_name, src, cmd, outputs):
        """The command on a full reference disk, then on tmpfs sizes from far too small to
        ample: below the outputs' total it must fail cleanly; at any size it either fails
        cleanly or writes every output, identical to the reference."""
        ref = self.on_tmpfs(1 << 20, [(src, src_name)], cmd)
        self.assertEqual(ref['code'], 0, ref['stderr'])
        self.assertEqual(sorted(ref['files']), sorted(outputs + [src_name]))
        inputs = {src_name: ref['files'][src_name]}
        in_kb = 4 * -(-os.path.getsize(src) // 4096)   # the input's pages
        total_kb = sum(self.sizes_kb[n] for n in outputs)
        fails = 0
        for frac in (0.02, 0.2, 0.5, 0.8, 0.97, 1.3, 2.0, 3.0, 8.0):
            budget = 4 * int(frac * total_kb / 4)   # whole pages: tmpfs rounds sizes up
            with self.subTest(free_kb=budget):
                r = self.on_tmpfs(in_kb + budget, [(src, src_name)], cmd)
                if frac >= 8:
                    self.assertEqual(r['code'], 0, r['stderr'])
                if r['code'] == 0:
                    self.assertGreaterEqual(frac, 1, 'succeeded without room for the outputs')
                    self.assertEqual(r['files'], self.comparable(ref['files'], r['files']))
                else:
                    fails += 1
                    self.assertCleanFailure(r, inputs, outputs,
                                            r'(?i)no space left|left on its file system')
        self.assertGreaterEqual(fails, 5)
        return ref

    def comparable(self, ref, got):
        """Files whose bytes carry the run time (the report) compare by name only."""
        return {n: (got[n] if n.endswith('.json') and n in got else h) for n, h in ref.items()}

    def measure(self, src, cmd):
        d = self.folder('measure')
        res = L.run([a.replace('{mnt}', d) for a in cmd])
        self.assertEqual(res.code, 0, repr(res))
        self.sizes_kb = {n: 4 * -(-os.path.getsize(os.path.join(d, n)) // 4096)
                         for n in os.listdir(d)}
        shutil.rmtree(d)

    def test_disk_full_explain(self):
        src = self.crop('scene.tif', w=128, h=96)
        cmd = ['explain', '{mnt}/scene.tif', '-m', MODEL, '-o', '{mnt}/rel.tif', '--class-map',
               '{mnt}/cls.tif', '--scores', '{mnt}/p.tif', '--report', '{mnt}/run.json', '-q']
        outputs = ['rel.tif', 'rel.qml', 'cls.tif', 'cls.qml', 'cls.tif.aux.xml', 'p.tif',
                   'run.json']
        self.measure(src, [a.replace('{mnt}/scene.tif', src) for a in cmd])
        self.sweep('scene.tif', src, cmd, outputs)

    def test_disk_full_bands(self):
        src = self.crop('scene.tif', w=128, h=96)
        cmd = ['bands', '{mnt}/scene.tif', '-m', MODEL, '--json', '{mnt}/b.json', '--csv',
               '{mnt}/b.csv', '--plot', '{mnt}/b.svg', '-q']
        self.measure(src, [a.replace('{mnt}/scene.tif', src) for a in cmd])
        self.sweep('scene.tif', src, cmd, ['b.json', 'b.csv', 'b.svg'])

    def test_disk_full_relevance(self):
        x = self.p('x.npy')
        np.save(x, np.random.default_rng(2).normal(size=(24, 10, TILE, TILE)).astype('f4'))
        cmd = ['relevance', '-m', MODEL, '-i', '{mnt}/x.npy', '-o', '{mnt}/r.npy', '--scores',
               '{mnt}/s.npy', '--report', '{mnt}/j.json', '-q']
        self.measure(x, [a.replace('{mnt}/x.npy', x) for a in cmd])
        self.sweep('x.npy', x, cmd, ['r.npy', 's.npy', 'j.json'])

    def test_read_only_file_system(self):
        src = self.crop('scene.tif')
        cmd = ['explain', '{mnt}/scene.tif', '-m', MODEL, '-o', '{mnt}/rel.tif', '--report',
               '{mnt}/run.json', '-q']
        r = self.on_tmpfs(4096, [(src, 'scene.tif')], cmd, readonly=True)
        self.assertCleanFailure(r, {'scene.tif': sha256(src)}, ['rel.tif', 'run.json'],
                                r'Read-only file system')


# ----------------------------------------------------------------------- NaN and Inf data ---

class NonFinite(Case):
    """Row 8: NaN and Inf are masked (NaN in every output there) and counted in the report."""

    def scene_with(self, nodata=None):
        x = L.read_array(SCENE)[:, 180:260, 200:296].copy()      # (10, 80, 96) float32
        x[:, 10:14, 20:30] = np.nan                 # 40 pixels, every band
        x[4, 50, 7] = np.inf                        # one band only
        x[9, 60:63, 90] = -np.inf
        x[2, 70, 70] = np.nan
        ds = gdal.Open(SCENE)
        gt = list(ds.GetGeoTransform())
        gt[0] += 200 * gt[1]
        gt[3] += 180 * gt[5]
        names = [ds.GetRasterBand(k + 1).GetDescription() for k in range(10)]
        src = L.write_array(self.p('nan.tif'), x, gt=gt, wkt=ds.GetProjectionRef(),
                            dtype=gdal.GDT_Float32, descriptions=names, nodata=nodata)
        return src, x

    def run_report(self, src):
        out, rep = self.p('rel.tif'), self.p('run.json')
        res = L.run(['explain', src, '-m', MODEL, '-o', out, '--class-map', self.p('c.tif'),
                     '--report', rep])
        self.assertNoCrash(res)
        self.assertEqual(res.code, 0, repr(res))
        with open(rep) as f:
            return res, L.Raster(out), json.load(f)

    def test_counted_and_masked(self):
        src, x = self.scene_with()
        bad = ~np.isfinite(x).all(0)
        n_bad = int(bad.sum())
        self.assertEqual(n_bad, 40 + 1 + 3 + 1)
        res, r, rep = self.run_report(src)
        self.assertEqual(rep['pixels']['nonfinite'], n_bad)
        self.assertEqual(rep['pixels']['invalid'], n_bad)
        self.assertEqual(rep['pixels']['valid'], x.shape[1] * x.shape[2] - n_bad)
        self.assertTrue(any('NaN or Inf' in w and str(n_bad) in w for w in rep['warnings']),
                        rep['warnings'])
        self.assertIn('NaN or Inf', res.stderr)
        for k in range(r.count):
            self.assertTrue(np.array_equal(np.isnan(r.data[k]), bad), 'band %d' % (k + 1))
        self.assertTrue(np.all(L.Raster(self.p('c.tif')).data[0][bad] == 255))

    def test_nan_nodata_is_not_broken_data(self):
        # a band that declares NaN as nodata: its NaN are nodata, not errors; Inf still is
        src, x = self.scene_with(nodata=float('nan'))
        res, r, rep = self.run_report(src)
        inf = np.isinf(x).any(0)
        self.assertEqual(rep['pixels']['nonfinite'], int(inf.sum()))
        self.assertEqual(rep['pixels']['invalid'], int((~np.isfinite(x).all(0)).sum()))


# ------------------------------------------------------------------- tiny and odd grids ---

class OddGrids(Case):
    """Rows 7 and 10: 1 x 1 and one-row rasters work with a warning; south-up and rotated
    geotransforms are kept exactly."""

    def explain(self, src, extra=()):
        out, rep = self.p('rel.tif'), self.p('run.json')
        res = L.run(['explain', src, '-m', MODEL, '-o', out, '--report', rep] + list(extra))
        self.assertNoCrash(res)
        self.assertEqual(res.code, 0, repr(res))
        with open(rep) as f:
            return res, L.Raster(out), json.load(f)

    def assertSameGrid(self, r, src):
        s = gdal.Open(src)
        self.assertEqual((r.width, r.height), (s.RasterXSize, s.RasterYSize))
        self.assertEqual(r.gt, s.GetGeoTransform())      # exact: tuples of doubles
        self.assertTrue(r.srs.IsSame(s.GetSpatialRef()))

    def reference(self, src, r):
        """Relevance of the one tile: the raster normalised as the model's metadata says,
        padded with the fill value 0, explained by `geolrp relevance` with the same rules."""
        md = r.metadata
        meta = {}
        import onnx
        for p in onnx.load(MODEL).metadata_props:
            meta[p.key] = p.value
        mean = np.array(json.loads(meta['standardization_mean']))[:, None, None]
        std = np.array(json.loads(meta['standardization_std']))[:, None, None]
        raw = L.read_array(src).astype(np.float64)
        x = np.zeros((1, 10, TILE, TILE), np.float32)
        x[0, :, :raw.shape[1], :raw.shape[2]] = (raw - mean) / std
        R, _, res = L.relevance(MODEL, x, self.dir, 'ref',
                                ['--composite', md['GEOLRP_COMPOSITE'], '--low',
                                 md['GEOLRP_ZBOX_LOW'], '--high', md['GEOLRP_ZBOX_HIGH']])
        self.assertEqual(res.code, 0, repr(res))
        h, w = raw.shape[1:]
        return R[0, :, :h, :w].astype(np.float64), np.abs(R).max()

    def check_tiny(self, w, h):
        src = self.crop('tiny.tif', x0=300, y0=300, w=w, h=h)
        res, r, rep = self.explain(src)
        self.assertRegex(res.stderr, r'warning: .*smaller than a tile')
        self.assertTrue(any('smaller than a tile' in m for m in rep['warnings']))
        self.assertFalse(any('striped' in m for m in rep['warnings']), rep['warnings'])
        self.assertSameGrid(r, src)
        self.assertEqual(r.count, 11)
        self.assertTrue(np.all(np.isfinite(r.data)))
        n = len(L.tile_positions(w, TILE, TILE // 2)) * len(L.tile_positions(h, TILE, TILE // 2))
        self.assertEqual(rep['tiles']['total'], n)
        self.assertEqual(rep['tiles']['explained'], n)
        return src, r

    def test_one_pixel(self):
        src, r = self.check_tiny(1, 1)
        want, scale = self.reference(src, r)
        self.assertGreater(scale, 0)
        self.assertLessEqual(np.abs(r.data[1:] - want).max(), 1e-5 * scale)
        self.assertLessEqual(np.abs(r.data[0] - want.sum(0)).max(), 1e-5 * scale)

    def test_one_row(self):
        self.check_tiny(57, 1)

    def test_one_column(self):
        self.check_tiny(1, 45)

    def regridded(self, gt):
        src = self.crop('grid.tif', w=70, h=50)
        ds = gdal.Open(src, gdal.GA_Update)
        ds.SetGeoTransform(gt)
        ds = None
        self.assertEqual(gdal.Open(src).GetGeoTransform(), gt)
        return src

    def test_south_up(self):
        # row 0 is the southern edge: a positive y pixel size
        gt = (461475.0, 30.0, 0.0, 3396645.0, 0.0, 30.0)
        src = self.regridded(gt)
        _, r, _ = self.explain(src, ['-q'])
        self.assertEqual(r.gt, gt)
        self.assertSameGrid(r, src)

    def test_rotated_awkward_numbers(self):
        # terms that are not exact in decimal: any text round trip would change them
        gt = (461475.1, 29.9 * math.cos(0.3), 0.1 + 29.9 * math.sin(0.3), 3399645.7,
              29.9 * math.sin(0.3) / 3, -29.9 * math.cos(0.3))
        src = self.regridded(gt)
        _, r, _ = self.explain(src, ['-q', '--class-map', self.p('c.tif')])
        self.assertEqual(r.gt, gt)
        self.assertEqual(L.Raster(self.p('c.tif')).gt, gt)


# ----------------------------------------------------------- bands and options by name ---

class NamesInMessages(Case):
    def test_band_mismatch_lists_both(self):
        # row 5: 2 bands chosen, the model takes 10 and says which in its metadata
        src = self.crop('c.tif')
        out = self.folder('out')
        res = L.run(['explain', src, '-m', MODEL, '-o', os.path.join(out, 'r.tif'),
                     '--bands', 'B4_red,B5_nir', '-q'])
        self.assertFails(res, 2, r'\b2 bands\b', r'\b10 channels\b', 'B4_red, B5_nir')
        for name in ('B1_coastal', 'B9_cirrus', 'B11_tir2'):    # the model's band_names
            self.assertIn(name, res.stderr)
        self.assertEmpty(out)

    def test_invalid_options_named(self):
        # row 14: stride 0, tile larger than the model input, alpha - beta != 1
        src = self.crop('c.tif')
        out = self.folder('out')
        cases = [(['--stride', '0'], '--stride'), (['--stride', str(TILE + 1)], '--stride'),
                 (['--tile', str(2 * TILE)], '--tile'),
                 (['--rule', '#1=alpha-beta', '--alpha', '3', '--beta', '1'], '--alpha'),
                 (['--alpha', '1.5', '--beta', '1'], '--alpha'),
                 (['--min-valid', '2'], '--min-valid'), (['--batch', '0'], '--batch')]
        for extra, name in cases:
            for cmd in (['explain', src, '-m', MODEL, '-o', os.path.join(out, 'r.tif')],
                        ['bands', src, '-m', MODEL, '--json', os.path.join(out, 'b.json')]):
                with self.subTest(cmd=cmd[0], option=' '.join(extra)):
                    res = L.run(cmd + extra + ['-q'])
                    self.assertNoCrash(res)
                    self.assertEqual(res.code, 2, repr(res))
                    self.assertIn(name, res.stderr)
                    self.assertEmpty(out)
        x = self.p('x.npy')
        np.save(x, np.zeros((1, 10, TILE, TILE), np.float32))
        for extra, name in cases[3:5] + [(['--batch', '0'], '--batch')]:
            with self.subTest(cmd='relevance', option=' '.join(extra)):
                res = L.run(['relevance', '-m', MODEL, '-i', x, '-o',
                             os.path.join(out, 'r.npy'), '-q'] + extra)
                self.assertNoCrash(res)
                self.assertEqual(res.code, 2, repr(res))
                self.assertIn(name, res.stderr)
                self.assertEmpty(out)

    def test_too_many_classes_for_a_class_map(self):
        # a model with 300 outputs: class maps are Byte (255 = nodata); the class
        # probabilities of a tile are kept in a buffer of 255 (was a stack overflow)
        import onnx
        from onnx import TensorProto, helper, numpy_helper
        rng = np.random.default_rng(4)
        W = numpy_helper.from_array(rng.standard_normal((2, 10, 3, 3)).astype('f4'), 'W')
        W2 = numpy_helper.from_array(rng.standard_normal((300, 2 * TILE * TILE)).astype('f4'),
                                     'W2')
        nodes = [helper.make_node('Conv', ['input', 'W'], ['h'], name='c0', pads=[1, 1, 1, 1]),
                 helper.make_node('Flatten', ['h'], ['f'], name='flat'),
                 helper.make_node('Gemm', ['f', 'W2'], ['y'], name='fc', transB=1)]
        g = helper.make_graph(nodes, 'k300', [helper.make_tensor_value_info(
            'input', TensorProto.FLOAT, ['N', 10, TILE, TILE])], [
            helper.make_tensor_value_info('y', TensorProto.FLOAT, None)], [W, W2])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)])
        m.ir_version = 7
        model = self.p('k300.onnx')
        onnx.save(m, model)
        src = self.crop('c.tif')
        out = self.folder('out')
        for args in (['classify', src, '-m', model, '-o', os.path.join(out, 'c.tif')],
                     ['explain', src, '-m', model, '-o', os.path.join(out, 'r.tif'),
                      '--scores', os.path.join(out, 's.tif')]):
            with self.subTest(command=args[0]):
                res = L.run(args + ['-q'])
                self.assertFails(res, 2, re.escape(model), r'300 classes', r'255')
                self.assertEmpty(out)
        # relevance alone has no such limit
        res = L.run(['explain', src, '-m', model, '-o', os.path.join(out, 'r.tif'), '-q'])
        self.assertNoCrash(res)
        self.assertEqual(res.code, 0, repr(res))


if __name__ == '__main__':
    L.parse_argv()
    unittest.main(verbosity=int(os.environ.get('GEOLRP_TEST_VERBOSITY', '2')))
