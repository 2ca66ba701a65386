"""Shared helpers for the geolrp Python tests.

The binary is given by ``--geolrp PATH`` on the command line (stripped from argv before
unittest sees it) or by the environment variable GEOLRP.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

GEOLRP = os.environ.get('GEOLRP')

# tolerances (fixed by the test plan; never loosen them to make a test pass)
R_RTOL = 1e-4      # max|R - R_ref| <= R_RTOL * max|R_ref|
S_RTOL = 1e-5      # max|S - S_ref| <= S_RTOL * max|S_ref|
COND_LIMIT = 1e-5  # float32 vs float64 oracle disagreement above which a case is ill-posed


def parse_argv():
    """Strip --geolrp PATH / --geolrp=PATH from sys.argv."""
    global GEOLRP
    argv = [sys.argv[0]]
    i = 1
    while i < len(sys.argv):
        a = sys.argv[i]
        if a == '--geolrp' and i + 1 < len(sys.argv):
            GEOLRP = sys.argv[i + 1]
            i += 2
            continue
        if a.startswith('--geolrp='):
            GEOLRP = a.split('=', 1)[1]
            i += 1
            continue
        argv.append(a)
        i += 1
    sys.argv[:] = argv
    if GEOLRP is None:
        default = os.path.join(HERE, '..', '..', 'build', 'geolrp')
        if os.path.exists(default):
            GEOLRP = os.path.abspath(default)
    return GEOLRP


def main():
    parse_argv()
    unittest.main(verbosity=int(os.environ.get('GEOLRP_TEST_VERBOSITY', '1')), warnings='ignore')


class Result:
    def __init__(self, proc, args):
        self.code = proc.returncode
        self.stdout = proc.stdout.decode('utf-8', 'replace')
        self.stderr = proc.stderr.decode('utf-8', 'replace')
        self.args = args

    def __repr__(self):
        return 'geolrp %s -> exit %d\nstderr: %s' % (' '.join(self.args), self.code,
                                                      self.stderr[-2000:])


def run_geolrp(args, timeout=120):
    if not GEOLRP:
        raise unittest.SkipTest('no geolrp binary (use --geolrp PATH or GEOLRP=PATH)')
    args = [str(a) for a in args]
    proc = subprocess.run([GEOLRP] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)
    return Result(proc, args)


SANITIZER_MARKERS = ('AddressSanitizer', 'UndefinedBehaviorSanitizer', 'LeakSanitizer',
                     'runtime error:', 'Segmentation fault', 'core dumped', 'SUMMARY: ')


class GeolrpTestCase(unittest.TestCase):
    """Creates a temporary directory per test class."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='geolrp_test_')

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    _counter = 0

    def path(self, name):
        GeolrpTestCase._counter += 1
        d = os.path.join(self.tmp, 'r%05d' % GeolrpTestCase._counter)
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, name)

    def save_x(self, x):
        p = self.path('X.npy')
        np.save(p, np.ascontiguousarray(x, dtype=np.float32))
        return p

    def assertNoCrash(self, res):
        self.assertLess(res.code, 128, 'crashed (signal): %r' % res)
        self.assertGreaterEqual(res.code, 0, 'killed by signal: %r' % res)
        for m in SANITIZER_MARKERS:
            self.assertNotIn(m, res.stderr, 'sanitizer / crash output: %r' % res)

    def assertExit(self, res, code):
        self.assertNoCrash(res)
        self.assertEqual(res.code, code, repr(res))

    def relevance(self, model, x, extra=(), scores=True, report=False):
        """Run ``geolrp relevance``; returns (R, S or None, report dict or None, Result)."""
        xp = self.save_x(x) if not isinstance(x, str) else x
        rp = self.path('R.npy')
        args = ['relevance', '--model', model, '--input', xp, '--output', rp]
        sp = jp = None
        if scores:
            sp = self.path('S.npy')
            args += ['--scores', sp]
        if report:
            jp = self.path('report.json')
            args += ['--report', jp]
        args += list(extra)
        res = run_geolrp(args)
        self.assertExit(res, 0)
        R = np.load(rp)
        S = np.load(sp) if sp else None
        rep = None
        if jp:
            with open(jp) as fh:
                rep = json.load(fh)
        return R, S, rep, res

    def assertRelClose(self, got, ref, rtol, what=''):
        got = np.asarray(got)
        ref = np.asarray(ref, dtype=np.float64)
        self.assertEqual(tuple(got.shape), tuple(ref.shape), '%s: shape %s != %s'
                         % (what, got.shape, ref.shape))
        self.assertTrue(np.all(np.isfinite(got)), '%s: non-finite values' % what)
        scale = np.abs(ref).max()
        diff = np.abs(got.astype(np.float64) - ref)
        err = diff.max()
        if not err <= rtol * scale:
            i = np.unravel_index(np.argmax(diff), diff.shape)
            self.fail('%s: max|got-ref| = %.3e > %.1e * max|ref| (= %.3e); worst at %s: got %.8g '
                      'ref %.8g; relative %.3e' % (what, err, rtol, rtol * scale, tuple(int(v) for v in i),
                                                  got[i], ref[i], err / scale if scale else np.inf))


def onnx_linear_nodes(path):
    """Names of the linear nodes (Conv/Gemm/MatMul) of an ONNX file, in graph order."""
    import onnx
    m = onnx.load(path)
    return [n.name for n in m.graph.node if n.op_type in ('Conv', 'Gemm', 'MatMul')]


class OracleRunner:
    """float64 oracle for one model + a float32 twin used to detect ill-posed cases
    (where float32 rounding alone moves the result by more than COND_LIMIT)."""

    def __init__(self, module):
        import torch
        import lrp_oracle as lo
        self.lo = lo
        self.o64 = lo.Oracle(module)
        with lo.precision(torch.float32):
            self.o32 = lo.Oracle(module)

    def run(self, x, check_conditioning=True, **kw):
        import torch
        R64, info = self.o64.relevance(x, **kw)
        cond = 0.0
        if check_conditioning:
            with self.lo.precision(torch.float32):
                R32, _ = self.o32.relevance(x, **kw)
            scale = R64.abs().max().item()
            cond = (R32.double() - R64).abs().max().item() / scale if scale > 0 else 0.0
        return R64.numpy(), info, cond


_ORACLES = {}


def oracle_for(case):
    if case.name not in _ORACLES:
        _ORACLES[case.name] = OracleRunner(case.module)
    return _ORACLES[case.name]
