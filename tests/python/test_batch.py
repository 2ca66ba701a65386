#!/usr/bin/python3
"""`geolrp batch` and `geolrp merge-manifest` end to end, on small crops of the real scenes
(../shared/data relative to the repository) and a small random CNN exported here.

What is checked: every scene's outputs equal a single `geolrp explain` of that scene; a
corrupt scene is recorded as failed with its error while the others complete (exit 1);
reruns skip exactly the scenes whose manifest entry, input, model, options and output
checksums still hold, and redo the others (failed, touched or rewritten input, deleted or
corrupted output, other options, --force); `kill -9` at various moments leaves only complete
outputs and a parseable manifest, and a rerun completes the job without temporaries; two
shards into one folder equal one unsharded run, also from SLURM_ARRAY_* variables, and
merge-manifest combines them; input expansion (folders with --ext, patterns, lists,
duplicates, output names).

Run: /usr/bin/python3 tests/python/test_batch.py --geolrp build/geolrp
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scene_testlib as L  # noqa: E402

L8_LOCAL = os.path.join(L.REPO, 'data', 'landsat8', 'LC80200392015216_10band.tif')
CLASSES = ['water', 'land', 'cloud']
TMP = None
MODEL = None
GOOD = None     # folder of the four good scenes (never modified)
REF = None      # an uninterrupted, unsharded batch over GOOD
TEMP_RE = re.compile(r'^\..*\.(tmp-|part-|cog-)')


def setUpModule():
    global TMP, MODEL, GOOD, REF
    for p in (L8_LOCAL, L.LANDSAT8, L.S2_160, L.S2_900):
        if not os.path.exists(p):
            raise RuntimeError('test raster not found: %s' % p)
    if not os.access(L.binary(), os.X_OK):
        raise RuntimeError('no geolrp binary at %s (use --geolrp PATH)' % L.binary())
    TMP = tempfile.mkdtemp(prefix='geolrp_batch_')
    MODEL = os.path.join(TMP, 'model.onnx')
    L.make_cnn(MODEL, 10, tile=32, classes=3, seed=7, class_names=CLASSES)
    GOOD = os.path.join(TMP, 'good')
    make_scenes(GOOD)
    REF = os.path.join(TMP, 'ref')
    res = batch([GOOD, '-O', REF])
    if res.code != 0:
        raise RuntimeError('reference batch failed: %r' % res)


def tearDownModule():
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def make_scenes(d):
    """Four real 10-band scenes of different sizes and sensors; two share the name
    'scene' in different folders (l8/a, l8/b: named a__scene, b__scene)."""
    for sub in ('l8/a', 'l8/b', 's2'):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    L.crop(L8_LOCAL, os.path.join(d, 'l8', 'a', 'scene.tif'), 0, 0, 96, 96)
    L.crop(L.LANDSAT8, os.path.join(d, 'l8', 'b', 'scene.tif'), 300, 260, 80, 72)
    L.crop(L.S2_160, os.path.join(d, 's2', 's2_160.tif'), 100, 120, 64, 64,
           bands=range(1, 11))
    L.crop(L.S2_900, os.path.join(d, 's2', 's2_900.tif'), 10, 20, 70, 60,
           bands=range(2, 12))
    return {'a__scene': os.path.join(d, 'l8', 'a', 'scene.tif'),
            'b__scene': os.path.join(d, 'l8', 'b', 'scene.tif'),
            's2_160': os.path.join(d, 's2', 's2_160.tif'),
            's2_900': os.path.join(d, 's2', 's2_900.tif')}


def truncated_scene(path):
    """A real GeoTIFF cut short: it opens, and reading fails half way through."""
    full = path + '.full.tif'
    L.crop(L8_LOCAL, full, 200, 200, 96, 96)
    with open(full, 'rb') as f:
        data = f.read()
    os.remove(full)
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    return path


def batch(args, env=None, timeout=300):
    args = ['batch'] + [str(a) for a in args] + ['-m', MODEL]
    # Only the variables a test sets: the suite itself may run inside a Slurm array.
    full = {k: v for k, v in os.environ.items() if not k.startswith('SLURM_ARRAY_')}
    full.setdefault('OMP_NUM_THREADS', '1')
    full.update(env or {})
    proc = subprocess.run([L.binary()] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, env=full)
    return L.Result(proc, args)


def load_manifest(path):
    with open(path) as f:
        return json.load(f)


def by_name(manifest):
    return {e['name']: e for e in manifest['scenes']}


def temporaries(d):
    return sorted(n for n in os.listdir(d) if TEMP_RE.match(n))


def relevance(d, name):
    return L.read_array(os.path.join(d, name + '.relevance.tif'))


class BatchCase(L.CrashChecks, unittest.TestCase):
    def workdir(self):
        return L.new_workdir(TMP)

    def assertSameOutputs(self, a, b, names):
        """Relevance and class map of each scene bit-identical in folders a and b."""
        for n in names:
            self.assertTrue(L.arrays_equal_nan(relevance(a, n), relevance(b, n)),
                            '%s: relevance differs between %s and %s' % (n, a, b))
            self.assertTrue(np.array_equal(L.read_array(os.path.join(a, n + '.classes.tif')),
                                           L.read_array(os.path.join(b, n + '.classes.tif'))),
                            '%s: class map differs' % n)

    def statuses(self, manifest):
        return {e['name']: e['status'] for e in manifest['scenes']}


# --------------------------------------------------------- failures, resume, redo ---

class Resume(BatchCase):
    def test_corrupt_scene_resume_and_redo(self):
        w = self.workdir()
        scenes = make_scenes(os.path.join(w, 'in'))
        bad = truncated_scene(os.path.join(w, 'in', 'bad.tif'))
        out = os.path.join(w, 'out')
        manifest = os.path.join(out, 'manifest.json')
        names = sorted(scenes)

        res = batch([os.path.join(w, 'in'), '-O', out])
        self.assertExit(res, 1)
        m = load_manifest(manifest)
        st = self.statuses(m)
        self.assertEqual(st, dict({n: 'done' for n in names}, bad='failed'), repr(res))
        e = by_name(m)['bad']
        self.assertIn(bad, e['error'], 'the error must name the scene')
        self.assertEqual(e['outputs'], [])
        self.assertIn('bad.tif: failed: ', res.stderr)
        self.assertRegex(res.stderr, r'4 done, 0 skipped, 1 failed')
        self.assertFalse([n for n in os.listdir(out) if n.startswith('bad.')],
                         'a failed scene leaves no outputs')
        self.assertEqual(temporaries(out), [])
        self.assertEqual(m['inputs']['total'], 5)
        self.assertEqual(m['model_sha256'], L.sha256_file(MODEL))

        # The manifest describes each done scene: input, model, options, outputs.
        for n in names:
            e = by_name(m)[n]
            self.assertEqual(e['input'], scenes[n])
            self.assertEqual(e['size'], os.path.getsize(scenes[n]))
            self.assertEqual(e['model_sha256'], m['model_sha256'])
            self.assertEqual(e['options'], m['options'])
            self.assertIsInstance(e['duration_seconds'], float)
            files = {o['file']: o for o in e['outputs']}
            self.assertEqual(set(files), {n + s for s in (
                '.relevance.tif', '.relevance.qml', '.classes.tif', '.classes.qml',
                '.classes.tif.aux.xml', '.run.json', '.bands.json', '.bands.csv')})
            for f, o in files.items():
                self.assertEqual(o['sha256'], L.sha256_file(os.path.join(out, f)), f)

        # The outputs are those of a single explain of each scene.
        for n in names:
            ref = os.path.join(w, 'explain_' + n)
            os.makedirs(ref)
            res_e = L.run(['explain', scenes[n], '-m', MODEL, '-q',
                           '-o', os.path.join(ref, n + '.relevance.tif'),
                           '--class-map', os.path.join(ref, n + '.classes.tif'),
                           '--report', os.path.join(ref, 'r.json'),
                           '--bands-report', os.path.join(ref, 'b.json')])
            self.assertExit(res_e, 0)
            self.assertSameOutputs(out, ref, [n])

        def mtimes():
            return {n: os.stat(os.path.join(out, n + '.relevance.tif')).st_mtime_ns
                    for n in names}

        # Rerun: done scenes skipped (not rewritten), the failed one tried again.
        before = mtimes()
        res = batch([os.path.join(w, 'in'), '-O', out])
        self.assertExit(res, 1)
        st = self.statuses(load_manifest(manifest))
        self.assertEqual(st, dict({n: 'skipped' for n in names}, bad='failed'))
        self.assertEqual(res.stderr.count('skipped (up to date)'), 4, res.stderr)
        self.assertEqual(mtimes(), before)
        skipped = by_name(load_manifest(manifest))
        self.assertEqual(skipped['s2_160']['outputs'], by_name(m)['s2_160']['outputs'])

        # The bad scene repaired: only it runs, exit 0.
        L.crop(L8_LOCAL, bad, 200, 200, 96, 96)
        res = batch([os.path.join(w, 'in'), '-O', out])
        self.assertExit(res, 0)
        self.assertEqual(self.statuses(load_manifest(manifest)),
                         dict({n: 'skipped' for n in names}, bad='done'))

        def redone_after(change, expect):
            change()
            res = batch([os.path.join(w, 'in'), '-O', out])
            self.assertExit(res, 0)
            st = self.statuses(load_manifest(manifest))
            self.assertEqual(sorted(n for n, s in st.items() if s == 'done'), expect,
                             res.stderr)
            self.assertEqual(temporaries(out), [])

        # A new modification time (content unchanged) redoes that scene only.
        t = os.stat(scenes['s2_900']).st_mtime_ns
        redone_after(lambda: os.utime(scenes['s2_900'], ns=(t + 10**9, t + 10**9)),
                     ['s2_900'])
        # New content, even with the old size and time.
        def rewrite():
            st0 = os.stat(scenes['b__scene'])
            L.crop(L.LANDSAT8, scenes['b__scene'], 310, 260, 80, 72)
            os.utime(scenes['b__scene'], ns=(st0.st_atime_ns, st0.st_mtime_ns + 1))
        redone_after(rewrite, ['b__scene'])
        self.assertFalse(L.arrays_equal_nan(relevance(out, 'b__scene'),
                                            relevance(REF, 'b__scene')))
        # A deleted output; an output corrupted in place (same size).
        redone_after(lambda: os.remove(os.path.join(out, 's2_160.bands.csv')), ['s2_160'])

        def corrupt():
            p = os.path.join(out, 'a__scene.relevance.tif')
            with open(p, 'r+b') as f:
                f.seek(os.path.getsize(p) // 2)
                b = f.read(1)
                f.seek(-1, 1)
                f.write(bytes([b[0] ^ 0xFF]))
        redone_after(corrupt, ['a__scene'])
        self.assertSameOutputs(out, REF, ['a__scene', 's2_160', 's2_900'])

        # --force redoes everything; other options redo everything.
        res = batch([os.path.join(w, 'in'), '-O', out, '--force', '-q'])
        self.assertExit(res, 0)
        self.assertEqual(res.stderr, '', '-q prints nothing when nothing fails')
        self.assertEqual(set(self.statuses(load_manifest(manifest)).values()), {'done'})
        res = batch([os.path.join(w, 'in'), '-O', out, '--stride', '8'])
        self.assertExit(res, 0)
        m = load_manifest(manifest)
        self.assertEqual(set(self.statuses(m).values()), {'done'})
        self.assertEqual(m['options']['stride'], 8)
        # Spelling does not matter, values do: 0.25 == .250 is up to date.
        res = batch([os.path.join(w, 'in'), '-O', out, '--stride', '8', '--gamma', '.250'])
        self.assertExit(res, 0)
        self.assertEqual(set(self.statuses(load_manifest(manifest)).values()), {'skipped'})
        # --scores adds an output, so it is a different run.
        res = batch([os.path.join(w, 'in'), '-O', out, '--stride', '8', '--scores'])
        self.assertExit(res, 0)
        self.assertEqual(set(self.statuses(load_manifest(manifest)).values()), {'done'})
        self.assertTrue(os.path.exists(os.path.join(out, 's2_160.scores.tif')))

    def test_stale_temporaries_removed(self):
        """Temporaries of this run's scenes are removed, anything else is left alone."""
        w = self.workdir()
        out = os.path.join(w, 'out')
        os.makedirs(out)
        ours = ['.s2_160.relevance.tif.part-123.tif', '.s2_160.run.json.tmp-AbC123',
                '.a__scene.classes.tif.cog-9.tif.aux.xml', '.manifest.json.tmp-xYz987']
        theirs = ['.other.relevance.tif.part-1.tif', '.s2_160.notes.tmp-1', 'keep.txt']
        for n in ours + theirs:
            open(os.path.join(out, n), 'w').close()
        res = batch([GOOD, '-O', out])
        self.assertExit(res, 0)
        self.assertIn('removed 4 temporaries', res.stderr)
        left = sorted(os.listdir(out))
        for n in ours:
            self.assertNotIn(n, left)
        for n in theirs:
            self.assertIn(n, left)


# ------------------------------------------------------------------------ kill -9 ---

class Kill(BatchCase):
    def check_after_kill(self, out):
        """Whatever is there looks complete and is: every manifest parses, every output
        file opens and reads fully."""
        from osgeo import gdal
        for n in os.listdir(out):
            p = os.path.join(out, n)
            if n.startswith('.'):
                continue
            if n.endswith('.json'):
                with open(p) as f:
                    json.load(f)
            elif n.endswith('.tif'):
                ds = gdal.Open(p)
                ds.ReadAsArray()
                ds = None
            elif n.endswith('.qml') or n.endswith('.aux.xml'):
                L.parse_qml(p)

    def test_kill9_then_rerun(self):
        w = self.workdir()
        out = os.path.join(w, 'out')
        manifest = os.path.join(out, 'manifest.json')
        # A smaller stride makes each scene take long enough to be killed inside it.
        args = [L.binary(), 'batch', GOOD, '-m', MODEL, '-O', out, '--stride', '4', '-q']
        env = dict(os.environ, OMP_NUM_THREADS='1')
        first = os.path.join(out, 'a__scene.relevance.tif')
        kills = 0
        for delay in (None, 0.15, 0.4, 0.05, 0.7):
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=env)
            if delay is None:  # the moment the first scene's output appears
                deadline = time.time() + 60
                while time.time() < deadline and not os.path.exists(first) and \
                        proc.poll() is None:
                    time.sleep(0.005)
            else:
                time.sleep(delay)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.communicate(timeout=60)
            if os.path.isdir(out):
                self.check_after_kill(out)
        self.assertGreaterEqual(kills, 3, 'the batch ended before it could be killed')
        res = L.run(args[1:-1], timeout=300)
        self.assertExit(res, 0)
        m = load_manifest(manifest)
        self.assertLessEqual(set(self.statuses(m).values()), {'done', 'skipped'},
                             self.statuses(m))
        self.assertEqual(len(m['scenes']), 4)
        self.assertEqual(temporaries(out), [])
        for e in m['scenes']:
            for o in e['outputs']:
                self.assertEqual(o['sha256'], L.sha256_file(os.path.join(out, o['file'])))
        # Same values as an uninterrupted run with the same options.
        ref = os.path.join(w, 'ref')
        self.assertExit(batch([GOOD, '-O', ref, '--stride', '4', '-q']), 0)
        self.assertSameOutputs(out, ref, sorted(by_name(m)))


# ------------------------------------------------------------------------- shards ---

class Shards(BatchCase):
    def test_two_shards_equal_one_run(self):
        w = self.workdir()
        out = os.path.join(w, 'out')
        r0 = batch([GOOD, '-O', out, '--shard', '0/2'])
        r1 = batch([GOOD, '-O', out, '--shard', '1/2'])
        self.assertExit(r0, 0)
        self.assertExit(r1, 0)
        m0 = load_manifest(os.path.join(out, 'manifest.shard-0-of-2.json'))
        m1 = load_manifest(os.path.join(out, 'manifest.shard-1-of-2.json'))
        self.assertEqual([e['index'] for e in m0['scenes']], [0, 2])
        self.assertEqual([e['index'] for e in m1['scenes']], [1, 3])
        self.assertEqual(m0['shard'], {'index': 0, 'count': 2, 'from': '--shard'})
        self.assertEqual(m0['inputs'], m1['inputs'])
        ref = load_manifest(os.path.join(REF, 'manifest.json'))
        names = sorted(by_name(ref))
        self.assertEqual(sorted(list(by_name(m0)) + list(by_name(m1))), names)
        self.assertSameOutputs(out, REF, names)
        files = lambda d: sorted(n for n in os.listdir(d) if not n.startswith('manifest')
                                 and not n.startswith('.'))
        self.assertEqual(files(out), files(REF))

        res = L.run(['merge-manifest', out])
        self.assertExit(res, 0)
        self.assertIn('4 scenes in 2 shards: 4 done, 0 skipped, 0 failed, 0 pending, '
                      '0 missing', res.stderr)
        merged = load_manifest(os.path.join(out, 'manifest.merged.json'))
        self.assertEqual([e['index'] for e in merged['scenes']], [0, 1, 2, 3])
        self.assertEqual([e['input'] for e in merged['scenes']],
                         [e['input'] for e in ref['scenes']])
        self.assertEqual(merged['summary']['done'], 4)
        self.assertEqual(merged['missing'], [])
        # -o elsewhere; an unsharded run's manifest.json alone also "merges".
        other = os.path.join(w, 'all.json')
        self.assertExit(L.run(['merge-manifest', out, '-o', other, '-q']), 0)
        self.assertEqual(len(load_manifest(other)['scenes']), 4)
        self.assertExit(L.run(['merge-manifest', REF, '-q']), 0)

        # A shard that never ran: its scenes are missing, exit 1.
        os.rename(os.path.join(out, 'manifest.shard-1-of-2.json'), os.path.join(w, 'm1'))
        res = L.run(['merge-manifest', out])
        self.assertExit(res, 1)
        self.assertIn('2 missing', res.stderr)
        self.assertIn('missing: scene 1 of the list (shard 1/2: no manifest)', res.stderr)
        os.rename(os.path.join(w, 'm1'), os.path.join(out, 'manifest.shard-1-of-2.json'))
        # Manifests of two shardings: say which.
        self.assertExit(batch([GOOD, '-O', out, '--shard', '2/3', '-q']), 0)
        res = L.run(['merge-manifest', out])
        self.assertExit(res, 2)
        self.assertIn('--shards', res.stderr)
        self.assertExit(L.run(['merge-manifest', out, '--shards', '2', '-q']), 0)
        # A shard run over another list does not merge.
        extra = L.crop(L8_LOCAL, os.path.join(w, 'extra.tif'), 40, 40, 40, 40)
        self.assertExit(batch([GOOD, extra, '-O', out, '--shard', '1/2', '-q']), 0)
        res = L.run(['merge-manifest', out, '--shards', '2'])
        self.assertExit(res, 2)
        self.assertIn('different input lists', res.stderr)

    def test_slurm_array_variables(self):
        w = self.workdir()
        out = os.path.join(w, 'out')
        lst = lambda env, *extra: batch([GOOD, '--list'] + list(extra), env=env)
        want = lst({}, '--shard', '1/3')
        self.assertExit(want, 0)
        self.assertEqual([l.split('\t')[0] for l in want.stdout.splitlines()], ['1'])
        for env in ({'SLURM_ARRAY_TASK_ID': '1', 'SLURM_ARRAY_TASK_COUNT': '3'},
                    {'SLURM_ARRAY_TASK_ID': '5', 'SLURM_ARRAY_TASK_MIN': '4',
                     'SLURM_ARRAY_TASK_MAX': '6'},
                    {'SLURM_ARRAY_TASK_ID': '3', 'SLURM_ARRAY_TASK_MIN': '1',
                     'SLURM_ARRAY_TASK_MAX': '5', 'SLURM_ARRAY_TASK_STEP': '2'}):
            res = lst(env)
            self.assertExit(res, 0)
            self.assertEqual(res.stdout, want.stdout, env)
        # --shard wins over the environment.
        res = lst({'SLURM_ARRAY_TASK_ID': '0', 'SLURM_ARRAY_TASK_COUNT': '3'}, '--shard',
                  '1/3')
        self.assertEqual(res.stdout, want.stdout)
        # A real run names its manifest after the shard the variables give.
        res = batch([GOOD, '-O', out, '-q'], env={'SLURM_ARRAY_TASK_ID': '2',
                                                   'SLURM_ARRAY_TASK_MIN': '1',
                                                   'SLURM_ARRAY_TASK_MAX': '2'})
        self.assertExit(res, 0)
        m = load_manifest(os.path.join(out, 'manifest.shard-1-of-2.json'))
        self.assertEqual([e['index'] for e in m['scenes']], [1, 3])
        self.assertEqual(m['shard']['from'], 'SLURM_ARRAY_TASK_ID=2')

        bad_env = [({'SLURM_ARRAY_TASK_ID': 'x', 'SLURM_ARRAY_TASK_COUNT': '2'},
                    'SLURM_ARRAY_TASK_ID'),
                   ({'SLURM_ARRAY_TASK_ID': '1'}, 'SLURM_ARRAY_TASK_COUNT'),
                   ({'SLURM_ARRAY_TASK_ID': '1', 'SLURM_ARRAY_TASK_COUNT': '0'},
                    'SLURM_ARRAY_TASK_COUNT'),
                   ({'SLURM_ARRAY_TASK_ID': '4', 'SLURM_ARRAY_TASK_COUNT': '3'},
                    'SLURM_ARRAY_TASK_ID=4'),
                   ({'SLURM_ARRAY_TASK_ID': '1', 'SLURM_ARRAY_TASK_MIN': '2',
                     'SLURM_ARRAY_TASK_MAX': '3'}, 'SLURM_ARRAY_TASK_ID=1'),
                   ({'SLURM_ARRAY_TASK_ID': '2', 'SLURM_ARRAY_TASK_MIN': '0',
                     'SLURM_ARRAY_TASK_MAX': 'z'}, 'SLURM_ARRAY_TASK_MAX')]
        for env, named in bad_env:
            res = lst(env)
            self.assertExit(res, 2)
            self.assertIn(named, res.stderr, env)
        for bad in ('2/2', '-1/2', '1/0', 'x', '1/', '/2', '0.5/2', '1/2/3', ''):
            res = batch([GOOD, '-O', out, '--shard', bad])
            self.assertExit(res, 2)
            self.assertIn('--shard', res.stderr, bad)


# ------------------------------------------------------------------------- inputs ---

class Inputs(BatchCase):
    def listing(self, args, cwd=None, code=0):
        proc = subprocess.run([L.binary(), 'batch', '--list'] + [str(a) for a in args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                              timeout=60)
        res = L.Result(proc, args)
        self.assertExit(res, code)
        return [tuple(l.split('\t')) for l in res.stdout.splitlines()], res

    def test_expansion(self):
        w = self.workdir()
        d = os.path.join(w, 'arch')
        os.makedirs(os.path.join(d, 'x', 'deep'))
        os.makedirs(os.path.join(d, '.hidden'))
        src = os.path.join(GOOD, 's2', 's2_900.tif')
        for rel in ('b.tif', 'a.TIF', 'x/deep/c.tiff', 'x/d.vrt', '.hidden/e.tif', '.f.tif',
                    'x/notes.txt.tif.bak', 'README'):
            shutil.copy(src, os.path.join(d, rel))
        L.translate(src, os.path.join(d, 'x', 'd.vrt'), format='VRT')
        os.symlink(os.path.join(d, 'b.tif'), os.path.join(d, 'x', 'link_to_b.tif'))
        os.symlink(os.path.join(d, 'x'), os.path.join(d, 'loop'))
        A = lambda rel: os.path.join(os.path.realpath(d), rel)

        got, _ = self.listing([d])
        self.assertEqual(got, [('0', 'a', A('a.TIF')), ('1', 'b', A('b.tif')),
                               ('2', 'd', A('x/d.vrt')), ('3', 'c', A('x/deep/c.tiff'))],
                         'sorted by path; hidden files, links to folders and duplicates '
                         '(a link to b.tif) left out')
        got, _ = self.listing([d, '--ext', '.vrt,tiff'])
        self.assertEqual([g[2] for g in got], [A('x/d.vrt'), A('x/deep/c.tiff')])
        # Patterns are expanded by geolrp (quoted), files kept by extension.
        got, _ = self.listing([os.path.join(d, '*')])
        self.assertEqual(len(got), 4)
        got, _ = self.listing([os.path.join(d, '[ab].*')])
        self.assertEqual([g[1] for g in got], ['a', 'b'])
        _, res = self.listing([os.path.join(d, 'nothing*')], code=2)
        self.assertIn('nothing*: the pattern matches no file', res.stderr)
        # Explicit files are taken whatever their extension; duplicates removed, also
        # through another spelling of the same path.
        got, _ = self.listing([os.path.join(d, 'x', 'notes.txt.tif.bak'), A('b.tif'),
                               os.path.join(d, 'x', '..', 'b.tif'), 'b.tif'], cwd=d)
        self.assertEqual([g[2] for g in got], [A('b.tif'), A('x/notes.txt.tif.bak')])
        # Lists: @FILE or *.txt / *.lst, relative to the current folder, comments.
        with open(os.path.join(w, 'scenes.txt'), 'w') as f:
            f.write('# the archive\n\narch/b.tif\n  arch/x/deep/c.tiff  \r\narch/b.tif\n'
                    'arch/x/*.vrt\n')
        want = [A('b.tif'), A('x/d.vrt'), A('x/deep/c.tiff')]
        for arg in ('scenes.txt', '@scenes.txt'):
            got, _ = self.listing([arg], cwd=w)
            self.assertEqual([g[2] for g in got], want, arg)
        shutil.copy(os.path.join(w, 'scenes.txt'), os.path.join(w, 'scenes.list'))
        got, _ = self.listing(['@scenes.list'], cwd=w)
        self.assertEqual([g[2] for g in got], want)
        with open(os.path.join(w, 'bad.lst'), 'w') as f:
            f.write('arch/b.tif\narch/missing.tif\n')
        _, res = self.listing(['bad.lst'], cwd=w, code=2)
        self.assertIn('bad.lst:2: arch/missing.tif', res.stderr)
        with open(os.path.join(w, 'nested.txt'), 'w') as f:
            f.write('scenes.txt\n')
        _, res = self.listing(['nested.txt'], cwd=w, code=2)
        self.assertIn('a list cannot name another list', res.stderr)
        _, res = self.listing([os.path.join(w, 'missing.tif')], code=2)
        self.assertIn('missing.tif', res.stderr)
        empty = os.path.join(w, 'empty')
        os.makedirs(empty)
        _, res = self.listing([empty], code=2)
        self.assertIn('no scene found', res.stderr)

    def test_names_and_outdir_inside_inputs(self):
        w = self.workdir()
        d = os.path.join(w, 'in')
        for rel in ('p/q/s.tif', 'p/r/s.tif', 'z/s.tif', 't.tif', 'u/t.vrt', 'v.tif', 'v.vrt'):
            os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
            shutil.copy(os.path.join(GOOD, 's2', 's2_900.tif'), os.path.join(d, rel))
        got, _ = self.listing([d])
        self.assertEqual(sorted(g[1] for g in got),
                         sorted(['p__q__s', 'p__r__s', 'z__s', 't', 'u__t', 'v_tif',
                                 'v_vrt']))
        # Shards see the same names: they are given over the whole list.
        both = self.listing([d, '--shard', '0/2'])[0] + self.listing([d, '--shard', '1/2'])[0]
        self.assertEqual(sorted(both), sorted(got))
        # The output folder inside the input folder: its .tif files are never inputs.
        out = os.path.join(d, 'out')
        sub = os.path.join(d, 'p')
        self.assertExit(batch([sub, '-O', os.path.join(sub, 'out'), '-q']), 0)
        got2, _ = self.listing([sub, '-O', os.path.join(sub, 'out')])
        self.assertEqual([g[1] for g in got2], ['q__s', 'r__s'])
        self.assertFalse(os.path.exists(out))


# ---------------------------------------------------------------------------- CLI ---

class Cli(BatchCase):
    def test_help_and_usage_errors(self):
        res = L.run(['batch', '--help'])
        self.assertExit(res, 0)
        for opt in ('-O, --outdir', '--ext', 'tif,tiff,vrt,jp2,img,nc', '--shard I/N',
                    'SLURM_ARRAY_TASK_ID', '--force', '--scores', '--list', '-q, --quiet',
                    '--stride', '--composite', '--target', '--config', '--bands', '--batch',
                    '--threads', '--min-valid', '--blend', '--init', '-m, --model'):
            self.assertIn(opt, res.stdout)
        res = L.run(['--help'])
        self.assertIn('batch', res.stdout)
        self.assertIn('merge-manifest', res.stdout)
        self.assertExit(L.run(['merge-manifest', '--help']), 0)
        w = self.workdir()
        out = os.path.join(w, 'out')
        for args, msg in (([GOOD], '-O OUTDIR'),
                          ([GOOD, '-O', out, '-o', 'x.tif'], 'batch names the outputs'),
                          ([GOOD, '-O', out, '--class-map', 'c.tif'], 'batch names'),
                          (['-O', out], 'no INPUTS'),
                          ([GOOD, '-O', out, '--ext', ','], '--ext'),
                          ([GOOD, '-O', out, '--stride', '0'], '--stride'),
                          ([GOOD, '-O', out, '--blend', 'x'], '--blend')):
            res = batch(args)
            self.assertExit(res, 2)
            self.assertIn(msg, res.stderr, args)
        # A model that is not one: the batch stops before any scene (exit 2).
        bad_model = os.path.join(w, 'bad.onnx')
        with open(bad_model, 'wb') as f:
            f.write(b'not a model')
        res = L.run(['batch', GOOD, '-O', out, '-m', bad_model])
        self.assertExit(res, 2)
        self.assertIn('bad.onnx', res.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, 'manifest.json')))
        self.assertExit(L.run(['merge-manifest', w]), 2)


if __name__ == '__main__':
    L.parse_argv()
    unittest.main(verbosity=2)
