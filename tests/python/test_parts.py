#!/usr/bin/python3
"""One scene split across jobs: `geolrp explain --part I/N` + `geolrp merge` must equal a
single `geolrp explain` bit for bit (relevance, class map, scores, .qml, metadata) with the
same report statistics, for N = 1, 2, 3 and more parts than tile rows (empty parts), with
overlapping tiles over several part boundaries, nodata and skipped tiles. Parts that do not
belong together, a missing, doubled or damaged part are refused with exit 2 and nothing is
written; part files appear only complete (temporary name, then rename; SIGTERM leaves
nothing). The part file layout of docs/merge.md is read back here with numpy.

Run: /usr/bin/python3 tests/python/test_parts.py --geolrp build/geolrp
"""

import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scene_testlib as L  # noqa: E402

TILE = 32
TMP = None
MODELS = {}
SCENES = {}
OUTPUTS = ('rel.tif', 'classes.tif', 'scores.tif')


def setUpModule():
    global TMP
    for p in (L.LANDSAT8, L.RGB_BYTE):
        if not os.path.exists(p):
            raise RuntimeError('test raster not found: %s' % p)
    if not os.access(L.binary(), os.X_OK):
        raise RuntimeError('no geolrp binary at %s' % L.binary())
    TMP = tempfile.mkdtemp(prefix='geolrp_parts_')
    MODELS['l8'] = os.path.join(TMP, 'l8.onnx')
    L.make_cnn(MODELS['l8'], 10, tile=TILE, classes=3, seed=1,
               class_names=['water', 'land', 'cloud'])
    MODELS['l8b'] = os.path.join(TMP, 'l8b.onnx')
    L.make_cnn(MODELS['l8b'], 10, tile=TILE, classes=3, seed=2,
               class_names=['water', 'land', 'cloud'])
    MODELS['rgb'] = os.path.join(TMP, 'rgb.onnx')
    L.make_cnn(MODELS['rgb'], 3, tile=TILE, classes=2, seed=3, class_names=['bare', 'veg'])
    # 150 x 133: 8 tile rows at stride 16, the last one shifted inward
    SCENES['l8'] = L.crop(L.LANDSAT8, os.path.join(TMP, 'l8.tif'), 100, 200, 150, 133)
    SCENES['l8_other'] = L.crop(L.LANDSAT8, os.path.join(TMP, 'l8_other.tif'), 300, 200, 150,
                                133)
    # the corner of RGB.byte: nodata (0) everywhere but a wedge of the image
    SCENES['rgb'] = L.crop(L.RGB_BYTE, os.path.join(TMP, 'rgb.tif'), 0, 0, 160, 190)


def tearDownModule():
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def read_part(path):
    """(document, seam values, rows) of a part file, read as docs/merge.md describes it."""
    with open(path, 'rb') as f:
        assert f.read(12) == b'GEOLRP-PART\n'
        assert struct.unpack('<I', f.read(4))[0] == 1
        f.seek(-32, os.SEEK_END)
        tr = f.read(32)
        assert tr[:8] == b'GLRPJSON' and tr[24:] == b'GLRPEND\n'
        off, length = struct.unpack('<QQ', tr[8:24])
        f.seek(off)
        doc = json.loads(f.read(length))
        f.seek(doc['data']['seam']['offset'])
        seam = np.lib.format.read_array(f)
        f.seek(doc['data']['rows']['offset'])
        rows = np.lib.format.read_array(f)
        f.seek(0)
        digest = hashlib.sha256(f.read(off)).hexdigest()
    assert digest == doc['data']['sha256'], 'SHA-256 of the data does not match'
    return doc, seam, rows


class PartsCase(L.CrashChecks, unittest.TestCase):
    def dir(self):
        return L.new_workdir(TMP)

    def single(self, scene, model, d, extra=(), bands_report=True):
        outs = ['-o', os.path.join(d, 'rel.tif'), '--class-map', os.path.join(d, 'classes.tif'),
                '--scores', os.path.join(d, 'scores.tif'), '--report',
                os.path.join(d, 'run.json')]
        if bands_report:
            outs += ['--bands-report', os.path.join(d, 'bands.json')]
        res = L.run(['explain', scene, '-m', model, '-q'] + outs + list(extra))
        self.assertExit(res, 0)
        return d

    def parts(self, scene, model, n, d, extra=(), part_extra=()):
        paths = []
        for i in range(n):
            p = os.path.join(d, 'part-%d.glrp' % i)
            res = L.run(['explain', scene, '-m', model, '--part', '%d/%d' % (i, n), '-o', p,
                         '-q'] + list(extra) + list(part_extra))
            self.assertExit(res, 0)
            paths.append(p)
        return paths

    def merge(self, parts, d, bands_report=True, code=0, extra=()):
        outs = ['-o', os.path.join(d, 'rel.tif'), '--class-map', os.path.join(d, 'classes.tif'),
                '--scores', os.path.join(d, 'scores.tif'), '--report',
                os.path.join(d, 'run.json')]
        if bands_report:
            outs += ['--bands-report', os.path.join(d, 'bands.json')]
        res = L.run(['merge'] + list(parts) + outs + ['-q'] + list(extra))
        self.assertExit(res, code)
        return res

    def assertSameRun(self, a, b, bands_report=True):
        """Outputs of directories a (single run) and b (merged) are the same."""
        for name in OUTPUTS:
            ra, rb = L.Raster(os.path.join(a, name)), L.Raster(os.path.join(b, name))
            self.assertEqual(ra.data.dtype, rb.data.dtype)
            if ra.data.dtype == np.float32:
                same = np.array_equal(ra.data.view(np.uint32), rb.data.view(np.uint32))
            else:
                same = np.array_equal(ra.data, rb.data)
            self.assertTrue(same, '%s: values differ (max |diff| %g)' % (
                name, np.nanmax(np.abs(ra.data.astype(np.float64) - rb.data))))
            self.assertEqual(ra.metadata, rb.metadata, name)
            self.assertEqual(ra.gt, rb.gt, name)
            self.assertTrue(L.same_crs(ra.srs, rb.srs), name)
            for ba, bb in zip(ra.bands, rb.bands):
                for key in ('description', 'type', 'metadata', 'categories', 'color_table',
                            'overviews'):
                    self.assertEqual(ba[key], bb[key], '%s: band %s differs' % (name, key))
            self.assertEqual(ra.image_structure.get('LAYOUT'), 'COG')
            self.assertEqual(rb.image_structure.get('LAYOUT'), 'COG')
        for qml in ('rel.qml', 'classes.qml'):
            with open(os.path.join(a, qml)) as fa, open(os.path.join(b, qml)) as fb:
                self.assertEqual(fa.read(), fb.read(), qml)
        with open(os.path.join(a, 'run.json')) as fa, open(os.path.join(b, 'run.json')) as fb:
            ja, jb = json.load(fa), json.load(fb)
        for j in (ja, jb):
            del j['time_seconds'], j['outputs']
        self.assertEqual(ja, jb, 'reports differ')
        if bands_report:
            with open(os.path.join(a, 'bands.json')) as fa, \
                    open(os.path.join(b, 'bands.json')) as fb:
                self.assertEqual(json.load(fa), json.load(fb), 'band reports differ')
        left = [f for f in os.listdir(b) if f.startswith('.')]
        self.assertEqual(left, [], 'temporaries left: %s' % left)


# ------------------------------------------------------------------- bit for bit ---

class SplitEqualsSingle(PartsCase):
    @classmethod
    def setUpClass(cls):
        cls.ref = tempfile.mkdtemp(dir=TMP)
        res = L.run(['explain', SCENES['l8'], '-m', MODELS['l8'], '-q', '-o',
                     os.path.join(cls.ref, 'rel.tif'), '--class-map',
                     os.path.join(cls.ref, 'classes.tif'), '--scores',
                     os.path.join(cls.ref, 'scores.tif'), '--report',
                     os.path.join(cls.ref, 'run.json'), '--bands-report',
                     os.path.join(cls.ref, 'bands.json')])
        assert res.code == 0, repr(res)
        with open(os.path.join(cls.ref, 'run.json')) as f:
            cls.tile_rows = json.load(f)['tiles']['total'] // 9
        assert cls.tile_rows == 8

    def check_n(self, n):
        d = self.dir()
        parts = self.parts(SCENES['l8'], MODELS['l8'], n, d)
        self.merge(reversed(parts), d)  # any order
        self.assertSameRun(self.ref, d)
        return parts

    def test_one_part(self):
        self.check_n(1)

    def test_two_parts(self):
        self.check_n(2)

    def test_three_parts(self):
        parts = self.check_n(3)
        # the middle part: its own rows, and tiles over the rows part 0 covers too
        doc, seam, rows = read_part(parts[1])
        self.assertEqual(doc['part']['tile_rows'], [2, 5])
        a, b = doc['part']['rows']
        self.assertEqual(rows.shape, (b - a, 14 + 2, 150))  # 11 relevance + 3 classes
        self.assertGreater(len(doc['data']['seam']['tiles']), 0)
        self.assertEqual(seam.size, sum(14 * h * TILE for _, _, _, h in
                                        doc['data']['seam']['tiles']))
        self.assertTrue(set(np.unique(rows[:, -1])) <= {0.0, 1.0})
        self.assertEqual(doc['model_sha256'], L.sha256_file(MODELS['l8']))

    def test_more_parts_than_tile_rows(self):
        """11 parts for 8 tile rows: 3 parts are empty, and welcome."""
        d = self.dir()
        parts = self.parts(SCENES['l8'], MODELS['l8'], self.tile_rows + 3, d)
        empty = [p for p in parts if read_part(p)[0]['part']['tile_rows'][0] ==
                 read_part(p)[0]['part']['tile_rows'][1]]
        self.assertEqual(len(empty), 3)
        self.merge(parts, d)
        self.assertSameRun(self.ref, d)

    def test_threads_of_parts_do_not_matter(self):
        d = self.dir()
        parts = self.parts(SCENES['l8'], MODELS['l8'], 2, d, part_extra=['--threads', '2'])
        self.merge(parts, d)
        self.assertSameRun(self.ref, d)


class SplitVariants(PartsCase):
    def test_small_stride_target_all(self):
        """Stride 6: a pixel lies under up to 6 tile rows, so a part's seam spans several
        tile rows and a pixel gets sums from one part and tiles from several later ones.
        One band per class, center blend."""
        extra = ['--stride', '6', '--target', 'all', '--blend', 'center']
        ref = self.single(SCENES['l8'], MODELS['l8'], self.dir(), extra, bands_report=False)
        d = self.dir()
        parts = self.parts(SCENES['l8'], MODELS['l8'], 7, d, extra)
        self.merge(parts, d, bands_report=False)
        self.assertSameRun(ref, d, bands_report=False)

    def test_nodata_and_min_valid(self):
        """Skipped tiles (no valid pixel, --min-valid), NaN where the input is invalid."""
        extra = ['--min-valid', '0.3', '--stride', '12', '--batch', '5', '--target', 'veg']
        ref = self.single(SCENES['rgb'], MODELS['rgb'], self.dir(), extra)
        with open(os.path.join(ref, 'run.json')) as f:
            tiles = json.load(f)['tiles']
        self.assertGreater(tiles['skipped_no_valid_pixel'], 0)
        self.assertGreater(tiles['skipped_min_valid'], 0)
        d = self.dir()
        parts = self.parts(SCENES['rgb'], MODELS['rgb'], 4, d, extra)
        self.merge(parts, d)
        self.assertSameRun(ref, d)

    def test_merge_outputs_are_optional(self):
        """Parts always carry class probabilities; merge may write only the relevance."""
        d = self.dir()
        parts = self.parts(SCENES['l8'], MODELS['l8'], 2, d)
        out = os.path.join(d, 'only.tif')
        res = L.run(['merge'] + parts + ['-o', out, '-q'])
        self.assertExit(res, 0)
        ref = self.single(SCENES['l8'], MODELS['l8'], self.dir())
        a, b = L.Raster(os.path.join(ref, 'rel.tif')), L.Raster(out)
        self.assertTrue(np.array_equal(a.data.view(np.uint32), b.data.view(np.uint32)))
        # --co reaches the merged COG (encoding only), and a refused option writes nothing
        z = os.path.join(d, 'zstd.tif')
        self.assertExit(L.run(['merge'] + parts + ['-o', z, '-q', '--co', 'COMPRESS=ZSTD',
                               '--threads', '2']), 0)
        rz = L.Raster(z)
        self.assertEqual(rz.image_structure.get('COMPRESSION'), 'ZSTD')
        self.assertTrue(np.array_equal(a.data.view(np.uint32), rz.data.view(np.uint32)))
        bad = os.path.join(d, 'bad.tif')
        res = L.run(['merge'] + parts + ['-o', bad, '-q', '--co', 'COMPRESS=NOPE'])
        self.assertExit(res, 2)
        self.assertIn('--co', res.stderr)
        self.assertFalse(os.path.exists(bad))


# ----------------------------------------------------------------- refusing parts ---

class Refusals(PartsCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(dir=TMP)
        cls.p3 = []
        for i in range(3):
            p = os.path.join(cls.d, 'p%d.glrp' % i)
            res = L.run(['explain', SCENES['l8'], '-m', MODELS['l8'], '--part', '%d/3' % i,
                         '-o', p, '-q'])
            assert res.code == 0, repr(res)
            cls.p3.append(p)

    def other_part(self, i, n, extra=(), model='l8', scene='l8'):
        p = os.path.join(self.dir(), 'other-%d.glrp' % i)
        res = L.run(['explain', SCENES[scene], '-m', MODELS[model], '--part', '%d/%d' % (i, n),
                     '-o', p, '-q'] + list(extra))
        self.assertExit(res, 0)
        return p

    def refused(self, parts, *words):
        d = self.dir()
        res = self.merge(parts, d, code=2)
        for w in words:
            self.assertIn(w, res.stderr, repr(res))
        self.assertEqual(os.listdir(d), [], 'something was written')
        return res

    def test_missing_part(self):
        self.refused([self.p3[0], self.p3[2]], 'part 1 of 3 is missing')

    def test_duplicate_part(self):
        self.refused([self.p3[0], self.p3[1], self.p3[1], self.p3[2]], 'both part 1 of 3')
        copy = os.path.join(self.dir(), 'copy.glrp')
        shutil.copy(self.p3[2], copy)
        self.refused(self.p3 + [copy], 'both part 2 of 3', copy)

    def test_other_split(self):
        self.refused([self.p3[0], self.other_part(1, 2), self.p3[2]], 'different splits')

    def test_other_options(self):
        res = self.refused([self.p3[0], self.other_part(1, 3, ['--stride', '8']), self.p3[2]],
                           'options.stride', 'does not belong')
        self.assertIn('other-1.glrp', res.stderr)

    def test_other_model(self):
        self.refused([self.p3[0], self.other_part(1, 3, model='l8b'), self.p3[2]],
                     'model_sha256')

    def test_other_scene(self):
        self.refused([self.p3[0], self.other_part(1, 3, scene='l8_other'), self.p3[2]],
                     'scene.fingerprint')

    def test_staged_copy_of_the_scene_is_the_same_scene(self):
        d = self.dir()
        copy = os.path.join(d, 'staged.tif')
        shutil.copy(SCENES['l8'], copy)
        os.utime(copy, (1, 1))
        p = os.path.join(d, 'p1.glrp')
        self.assertExit(L.run(['explain', copy, '-m', MODELS['l8'], '--part', '1/3', '-o', p,
                               '-q']), 0)
        self.merge([self.p3[0], p, self.p3[2]], self.dir())

    def test_damaged_parts(self):
        d = self.dir()
        with open(self.p3[1], 'rb') as f:
            data = f.read()
        trunc = os.path.join(d, 'trunc.glrp')
        with open(trunc, 'wb') as f:
            f.write(data[:len(data) // 2])
        self.refused([self.p3[0], trunc, self.p3[2]], 'trunc.glrp', 'not a complete')
        flipped = os.path.join(d, 'flipped.glrp')
        doc = read_part(self.p3[1])[0]
        b = bytearray(data)
        b[doc['data']['rows']['offset'] + 200] ^= 0x40
        with open(flipped, 'wb') as f:
            f.write(bytes(b))
        self.refused([self.p3[0], flipped, self.p3[2]], 'flipped.glrp', 'SHA-256')
        notpart = os.path.join(d, 'notpart.glrp')
        shutil.copy(SCENES['l8'], notpart)
        self.refused([self.p3[0], notpart, self.p3[2]], 'notpart.glrp', 'magic')
        self.refused([self.p3[0], os.path.join(d, 'absent.glrp'), self.p3[2]], 'absent.glrp')

    def test_existing_outputs_and_usage(self):
        d = self.dir()
        out = os.path.join(d, 'rel.tif')
        open(out, 'w').close()
        res = L.run(['merge'] + self.p3 + ['-o', out, '-q'])
        self.assertExit(res, 2)
        self.assertIn('--overwrite', res.stderr)
        self.assertExit(L.run(['merge'] + self.p3 + ['-o', out, '-q', '--overwrite']), 0)
        self.assertExit(L.run(['merge', '-o', out]), 2)
        self.assertExit(L.run(['merge'] + self.p3), 2)
        self.assertExit(L.run(['merge'] + self.p3 + ['-o', self.p3[0]]), 2)
        # with --part, the outputs belong to merge
        res = L.run(['explain', SCENES['l8'], '-m', MODELS['l8'], '--part', '0/2', '-o',
                     os.path.join(d, 'x.glrp'), '--class-map', os.path.join(d, 'c.tif')])
        self.assertExit(res, 2)
        self.assertIn('geolrp merge', res.stderr)
        for bad in ('2/2', '-1/2', '1/0', 'a/b', '1', '0/2x'):
            res = L.run(['explain', SCENES['l8'], '-m', MODELS['l8'], '--part', bad, '-o',
                         os.path.join(d, 'x.glrp')])
            self.assertExit(res, 2)
        self.assertExit(L.run(['classify', SCENES['l8'], '-m', MODELS['l8'], '--part', '0/2',
                               '-o', os.path.join(d, 'x.tif')]), 2)
        self.assertFalse(os.path.exists(os.path.join(d, 'x.glrp')))
        for cmd in (['merge', '--help'], ['explain', '--help'], ['--help']):
            res = L.run(cmd)
            self.assertExit(res, 0)
            self.assertIn('merge' if cmd[0] != 'explain' else '--part', res.stdout)


# --------------------------------------------------------------- atomic, Slurm env ---

class PartFiles(PartsCase):
    def test_overwrite_and_no_temporaries(self):
        d = self.dir()
        p = os.path.join(d, 'p.glrp')
        args = ['explain', SCENES['l8'], '-m', MODELS['l8'], '--part', '0/2', '-o', p, '-q']
        self.assertExit(L.run(args), 0)
        res = L.run(args)
        self.assertExit(res, 2)
        self.assertIn('--overwrite', res.stderr)
        self.assertExit(L.run(args + ['--overwrite']), 0)
        self.assertEqual(os.listdir(d), ['p.glrp'])

    def test_sigterm_leaves_nothing(self):
        """A part killed midway: no part file under its name, no temporary."""
        d = self.dir()
        p = os.path.join(d, 'big.glrp')
        env = dict(os.environ, OMP_NUM_THREADS='1')
        proc = subprocess.Popen([L.binary(), 'explain', L.LANDSAT8, '-m', MODELS['l8'],
                                 '--part', '0/1', '-o', p, '--stride', '4', '--batch', '1'],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        proc.stderr.read(1)  # progress started: the part file is open
        time.sleep(0.5)
        self.assertFalse(os.path.exists(p), 'part file visible before it is complete')
        self.assertTrue(any(f.startswith('.big.glrp.tmp-') for f in os.listdir(d)),
                        os.listdir(d))
        proc.send_signal(signal.SIGTERM)
        proc.stderr.read()
        proc.stderr.close()
        self.assertEqual(proc.wait(timeout=60), 143)
        self.assertEqual(os.listdir(d), [])

    def test_part_slurm_reads_the_array_task(self):
        d = self.dir()
        base = ['explain', SCENES['l8'], '-m', MODELS['l8'], '--part', 'slurm', '-q', '-o']
        saved = dict(os.environ)
        try:
            os.environ.update(SLURM_ARRAY_TASK_ID='5', SLURM_ARRAY_TASK_MIN='4',
                              SLURM_ARRAY_TASK_MAX='6')
            os.environ.pop('SLURM_ARRAY_TASK_COUNT', None)
            self.assertExit(L.run(base + [os.path.join(d, 'a.glrp')]), 0)
            self.assertEqual(read_part(os.path.join(d, 'a.glrp'))[0]['part']['index'], 1)
            os.environ.update(SLURM_ARRAY_TASK_ID='2', SLURM_ARRAY_TASK_COUNT='3',
                              SLURM_ARRAY_TASK_MIN='0')
            self.assertExit(L.run(base + [os.path.join(d, 'b.glrp')]), 0)
            doc = read_part(os.path.join(d, 'b.glrp'))[0]
            self.assertEqual((doc['part']['index'], doc['part']['count']), (2, 3))
            os.environ.update(SLURM_ARRAY_TASK_ID='7')
            res = L.run(base + [os.path.join(d, 'c.glrp')])
            self.assertExit(res, 2)
            self.assertIn('SLURM_ARRAY_TASK_ID=7 is not one of 3', res.stderr)
            for k in ('SLURM_ARRAY_TASK_ID', 'SLURM_ARRAY_TASK_COUNT', 'SLURM_ARRAY_TASK_MIN',
                      'SLURM_ARRAY_TASK_MAX'):
                os.environ.pop(k, None)
            res = L.run(base + [os.path.join(d, 'c.glrp')])
            self.assertExit(res, 2)
            self.assertIn('SLURM_ARRAY_TASK_ID', res.stderr)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        # without --part, a job array task still explains the whole scene
        env_run = subprocess.run([L.binary()] + base[:4] + ['-q', '-o',
                                                             os.path.join(d, 'whole.tif')],
                                 env=dict(os.environ, SLURM_ARRAY_TASK_ID='1',
                                          SLURM_ARRAY_TASK_COUNT='3'),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(env_run.returncode, 0, env_run.stderr)
        self.assertEqual(L.Raster(os.path.join(d, 'whole.tif')).height, 133)


if __name__ == '__main__':
    L.parse_argv()
    unittest.main(verbosity=2)
