#!/usr/bin/python3
"""geolrp error handling: bad models, bad .npy files, missing files, invalid options.

Every failure must be a clean exit 2 with a message (never a crash: exit code < 128 and no
sanitizer output).

Run: /usr/bin/python3 tests/python/test_errors.py --geolrp build/geolrp
"""

import os
import re
import struct
import subprocess

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import geolrp_testlib as T
import models


def _unsupported_model(kind):
    rng = np.random.default_rng(7)
    W = numpy_helper.from_array(rng.standard_normal((6, 8)).astype(np.float32), 'W')
    b = numpy_helper.from_array(np.zeros(6, np.float32), 'b')
    inits = [W, b]
    if kind == 'Erf':
        mid = [helper.make_node('Erf', ['h'], ['e'], name='my_erf_node')]
        mid_out = 'e'
    else:   # LSTM right after the Gemm (rejected by op type, before any shape check)
        Wl = numpy_helper.from_array(rng.standard_normal((1, 16, 6)).astype(np.float32), 'Wl')
        Rl = numpy_helper.from_array(rng.standard_normal((1, 16, 4)).astype(np.float32), 'Rl')
        inits += [Wl, Rl]
        mid = [helper.make_node('LSTM', ['h', 'Wl', 'Rl'], ['', 'e'], name='my_lstm_node',
                                hidden_size=4)]
        mid_out = 'e'
    nodes = [helper.make_node('Gemm', ['input', 'W', 'b'], ['h'], name='fc', transB=1)] + mid
    graph = helper.make_graph(
        nodes, 'unsupported',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['N', 8])],
        [helper.make_tensor_value_info(mid_out, TensorProto.FLOAT, None)], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    m.ir_version = 7
    return m


def _npy_bytes(header_dict_str, data=b'', magic=b'\x93NUMPY', version=(1, 0)):
    h = header_dict_str.encode('latin1')
    hl_size = 2 if version[0] == 1 else 4
    total = len(magic) + 2 + hl_size + len(h) + 1
    pad = (64 - total % 64) % 64
    h = h + b' ' * pad + b'\n'
    hl = struct.pack('<H', len(h)) if hl_size == 2 else struct.pack('<I', len(h))
    return magic + bytes(version) + hl + h + data


class ErrBase(T.GeolrpTestCase):
    def setUp(self):
        self.case = models.get('cnn_a')
        d = os.path.join(self.tmp, 'models')
        os.makedirs(d, exist_ok=True)
        self.model = self.case.export(d)
        self.x = self.case.data()

    def run_rel(self, model=None, x=None, extra=(), xpath=None):
        xp = xpath or self.save_x(self.x if x is None else x)
        rp = self.path('R.npy')
        res = T.run_geolrp(['relevance', '--model', model or self.model, '--input', xp,
                            '--output', rp] + list(extra))
        return res, rp

    def assertFails2(self, res, rp=None, *patterns):
        self.assertExit(res, 2)
        self.assertTrue(res.stderr.strip(), 'no error message: %r' % res)
        for p in patterns:
            self.assertRegex(res.stderr, p, 'message lacks %r: %r' % (p, res))
        if rp is not None:
            self.assertFalse(os.path.exists(rp), 'output written despite error')


class TestUnsupportedOps(ErrBase):
    def test_unsupported_op(self):
        for kind, node in (('Erf', 'my_erf_node'), ('LSTM', 'my_lstm_node')):
            with self.subTest(op=kind):
                p = self.path('%s.onnx' % kind)
                onnx.save(_unsupported_model(kind), p)
                x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
                res, rp = self.run_rel(model=p, x=x)
                self.assertFails2(res, rp, re.escape(node), r'\b%s\b' % kind, r'13')


class TestBrokenModels(ErrBase):
    def test_truncated_onnx(self):
        data = open(self.model, 'rb').read()
        for cut in (1, 7, 40, len(data) // 4, len(data) // 2, len(data) - 100, len(data) - 1):
            with self.subTest(cut=cut):
                p = self.path('trunc.onnx')
                with open(p, 'wb') as fh:
                    fh.write(data[:cut])
                res, _ = self.run_rel(model=p)
                self.assertFails2(res)

    def test_garbage_onnx(self):
        rng = np.random.default_rng(3)
        for label, blob in (('random', rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()),
                            ('empty', b''),
                            ('text', b'this is not an onnx model\n' * 20),
                            ('npy', open(self.save_x(self.x), 'rb').read()),
                            ('ff', b'\xff' * 300)):
            with self.subTest(kind=label):
                p = self.path('garbage.onnx')
                with open(p, 'wb') as fh:
                    fh.write(blob)
                res, _ = self.run_rel(model=p)
                self.assertFails2(res)

    def test_external_data(self):
        m = onnx.load(self.model)
        d = os.path.dirname(self.path('ext.onnx'))
        p = os.path.join(d, 'ext.onnx')
        onnx.save_model(m, p, save_as_external_data=True, all_tensors_to_one_file=True,
                        location='ext.onnx.data', size_threshold=0)
        self.assertTrue(os.path.exists(os.path.join(d, 'ext.onnx.data')))
        res, _ = self.run_rel(model=p)
        self.assertFails2(res, None, r'(?i)external')


def _hostile_model(kind):
    """Models whose shapes are absurd, dynamic or inconsistent: (model, node or tensor the
    message must name)."""
    rng = np.random.default_rng(5)
    vi = helper.make_tensor_value_info
    W = numpy_helper.from_array(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), 'W')
    W2 = numpy_helper.from_array(rng.standard_normal((4, 8)).astype(np.float32), 'W2')
    out = [vi('y', TensorProto.FLOAT, None)]

    def image(h, w, c=1):
        return [vi('input', TensorProto.FLOAT, ['N', c, h, w])]

    def empty_tensor(name, dims):   # dims promise data the file does not hold
        t = TensorProto()
        t.name, t.data_type = name, TensorProto.FLOAT
        t.dims.extend(dims)
        return t

    if kind == 'input 2^40 elements':
        g = ([helper.make_node('Conv', ['input', 'W'], ['y'], name='c0')], image(1 << 20, 1 << 20),
             [W], 'input')
    elif kind == 'initializer 2^40 elements':
        g = ([helper.make_node('Gemm', ['input', 'Wbig'], ['y'], name='big_gemm', transB=1)],
             [vi('input', TensorProto.FLOAT, ['N', 1 << 20])],
             [empty_tensor('Wbig', [1 << 20, 1 << 20])], 'Wbig')
    elif kind == 'initializer dims overflow int64':
        g = ([helper.make_node('Gemm', ['input', 'Wov'], ['y'], name='ov_gemm', transB=1)],
             [vi('input', TensorProto.FLOAT, ['N', 8])],
             [empty_tensor('Wov', [1 << 40, 1 << 40, 1 << 40])], 'Wov')
    elif kind == 'reshape to 2^40':
        shp = numpy_helper.from_array(np.array([1, 1 << 40], np.int64), 'shp')
        g = ([helper.make_node('Gemm', ['input', 'W2'], ['h'], name='fc', transB=1),
              helper.make_node('Reshape', ['h', 'shp'], ['y'], name='blow_up')],
             [vi('input', TensorProto.FLOAT, ['N', 8])], [W2, shp], 'blow_up')
    elif kind == 'conv output 2^36 elements':
        Wc = numpy_helper.from_array(rng.standard_normal((4096, 1, 3, 3)).astype(np.float32),
                                     'Wc')
        g = ([helper.make_node('Conv', ['input', 'Wc'], ['y'], name='wide_conv',
                               pads=[1, 1, 1, 1])], image(4096, 4096), [Wc], 'wide_conv')
    elif kind == 'activations over 8 GiB':
        Wc = numpy_helper.from_array(rng.standard_normal((64, 1, 3, 3)).astype(np.float32),
                                     'Wc')
        g = ([helper.make_node('Conv', ['input', 'Wc'], ['y'], name='mid_conv',
                               pads=[1, 1, 1, 1])], image(4096, 4096), [Wc], 'mid_conv')
    elif kind == 'pads 2^30':
        g = ([helper.make_node('Conv', ['input', 'W'], ['y'], name='pad_conv',
                               pads=[1 << 30] * 4)], image(8, 8), [W], 'pad_conv')
    elif kind == 'kernel larger than input':
        g = ([helper.make_node('Conv', ['input', 'W'], ['h'], name='c0', pads=[1, 1, 1, 1]),
              helper.make_node('MaxPool', ['h'], ['y'], name='pool_big',
                               kernel_shape=[1 << 30, 1 << 30])], image(8, 8), [W], 'pool_big')
    elif kind == 'dynamic height and width':
        g = ([helper.make_node('Conv', ['input', 'W'], ['y'], name='c0')], image('H', 'W'), [W],
             'input')
    elif kind == 'negative dimension':
        g = ([helper.make_node('Conv', ['input', 'W'], ['y'], name='c0')], image(-5, 8), [W],
             'input')
    elif kind == 'ConstantOfShape 2^28':
        # A few hundred bytes asking for 1 GiB of constant (found by fuzz_onnx).
        shp = numpy_helper.from_array(np.array([1 << 14, 1 << 14], np.int64), 'shp')
        g = ([helper.make_node('ConstantOfShape', ['shp'], ['big'], name='bomb'),
              helper.make_node('Add', ['input', 'big'], ['y'], name='use')],
             image(8, 8), [shp], 'bomb')
    elif kind == 'Identity chain over a weight':
        # Each Identity of a constant is a copy: 150 copies of a 4 MiB weight would take
        # 600 MiB; the load budget (4 x file + 64 MiB) stops the chain part way.
        Wid = numpy_helper.from_array(np.ones(1 << 20, np.float32), 'Wid')
        chain = [helper.make_node('Identity', ['Wid' if k == 0 else 'w%d' % (k - 1)],
                                  ['w%d' % k], name='copy%d' % k) for k in range(150)]
        g = (chain + [helper.make_node('Add', ['input', 'w149'], ['y'], name='use')],
             image(8, 8), [Wid], re.compile(r"'copy\d+'.*constants computed while loading"))
    else:
        raise ValueError(kind)
    nodes, inputs, inits, named = g
    m = helper.make_model(helper.make_graph(nodes, 'hostile', inputs, out, inits),
                          opset_imports=[helper.make_opsetid('', 13)])
    m.ir_version = 7
    return m, named


HOSTILE = ('input 2^40 elements', 'initializer 2^40 elements', 'initializer dims overflow int64',
           'reshape to 2^40', 'conv output 2^36 elements', 'activations over 8 GiB', 'pads 2^30',
           'kernel larger than input', 'dynamic height and width', 'negative dimension',
           'ConstantOfShape 2^28', 'Identity chain over a weight')
MAX_RSS_KB = 512 * 1024   # far below what any of these shapes would take


# Spawns geolrp and reports its exit code and peak memory. A separate small process: a
# child of this interpreter (torch loaded) would count its parent's pages until exec.
_MEASURE = """import os, sys
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def run_measured(args):
    """(exit code, stderr, peak resident memory in KiB) of geolrp."""
    p = subprocess.run(['/usr/bin/python3', '-c', _MEASURE, T.GEOLRP] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    code, rss = (int(v) for v in p.stdout.decode().split()[-2:])
    return code, p.stderr.decode('utf-8', 'replace'), rss


class TestHostileShapes(ErrBase):
    """Absurd (2^40 elements), dynamic and inconsistent shapes: exit 2 naming the node, input
    or initializer at fault, without a crash and without taking the memory they declare."""

    def test_hostile_shapes(self):
        x = self.save_x(np.zeros((1, 1, 8, 8), np.float32))
        for kind in HOSTILE:
            m, named = _hostile_model(kind)
            p = self.path('hostile.onnx')
            onnx.save(m, p)
            for args in (['info', p], ['relevance', '-m', p, '-i', x, '-o', self.path('R.npy')]):
                with self.subTest(shape=kind, command=args[0]):
                    code, err, rss = run_measured(args)
                    res = T.Result(type('P', (), {'returncode': code, 'stdout': b'',
                                                  'stderr': err.encode()})(), args)
                    self.assertFails2(res, None, named if isinstance(named, re.Pattern)
                                      else re.escape("'%s'" % named))
                    self.assertLess(rss, MAX_RSS_KB, 'peak memory %d KiB' % rss)


class TestInputShape(ErrBase):
    def test_wrong_spatial_shape(self):
        x = np.random.default_rng(0).standard_normal((5, 3, 10, 10)).astype(np.float32)
        res, _ = self.run_rel(x=x)
        self.assertFails2(res, None, r'3\D{1,6}12\D{1,6}12', r'3\D{1,6}10\D{1,6}10')

    def test_wrong_channels(self):
        x = np.random.default_rng(0).standard_normal((5, 4, 12, 12)).astype(np.float32)
        res, _ = self.run_rel(x=x)
        self.assertFails2(res, None, r'3\D{1,6}12\D{1,6}12', r'4\D{1,6}12\D{1,6}12')

    def test_wrong_rank(self):
        x = np.random.default_rng(0).standard_normal((5, 432)).astype(np.float32)
        res, _ = self.run_rel(x=x)
        self.assertFails2(res, None, r'3\D{1,6}12\D{1,6}12', r'432')

    def test_vector_model_wrong_features(self):
        case = models.get('mlp')
        p = case.export(os.path.join(self.tmp, 'models'))
        x = np.random.default_rng(0).standard_normal((5, 11)).astype(np.float32)
        res, _ = self.run_rel(model=p, x=x)
        self.assertFails2(res, None, r'12', r'11')


class TestBadNpy(ErrBase):
    def _good_header(self, shape=(5, 3, 12, 12), descr='<f4', fortran=False):
        return "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
            descr, 'True' if fortran else 'False', repr(tuple(shape)))

    def _write(self, blob):
        p = self.path('bad.npy')
        with open(p, 'wb') as fh:
            fh.write(blob)
        return p

    def test_bad_npy_files(self):
        data4 = self.x.astype('<f4').tobytes()
        data8 = self.x.astype('<f8').tobytes()
        cases = {
            'wrong magic': (_npy_bytes(self._good_header(), data4, magic=b'\x93NUMPZ'),
                            r'(?i)(magic|npy|numpy|format)'),
            'dtype <f8': (_npy_bytes(self._good_header(descr='<f8'), data8),
                          r'(?i)(f8|float64|float32|f4|dtype)'),
            'dtype <i4': (_npy_bytes(self._good_header(descr='<i4'), data4),
                          r'(?i)(i4|int32|float32|f4|dtype)'),
            'fortran_order': (_npy_bytes(self._good_header(fortran=True), data4),
                              r'(?i)fortran'),
            'truncated data': (_npy_bytes(self._good_header(), data4[:len(data4) // 2]),
                               r'(?i)(truncat|short|size|bytes|data|expected|end of file|eof)'),
            'bad header': (_npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (5, 3, "
                                      "12, 12 }", data4), r'(?i)(header|parse|shape)'),
            'header not a dict': (_npy_bytes("hello world", data4), r'(?i)(header|parse)'),
            'version 3.0': (_npy_bytes(self._good_header(), data4, version=(3, 0)),
                            r'(?i)version'),
            'header length beyond file': (b'\x93NUMPY\x01\x00\xff\xff' + b'{' * 20, None),
            'only magic': (b'\x93NUMPY', None),
            'empty': (b'', None),
        }
        for label, (blob, pat) in cases.items():
            with self.subTest(npy=label):
                p = self._write(blob)
                res, _ = self.run_rel(xpath=p)
                pats = [pat] if pat else []
                self.assertFails2(res, None, *pats)

    def test_handwritten_valid_npy_accepted(self):
        """Sanity check of the writer above: a well-formed v1.0 file is accepted."""
        p = self._write(_npy_bytes(self._good_header(), self.x.astype('<f4').tobytes()))
        res, rp = self.run_rel(xpath=p)
        self.assertExit(res, 0)


class TestMissingFiles(ErrBase):
    def test_missing_model(self):
        p = os.path.join(self.tmp, 'does_not_exist_model.onnx')
        res, _ = self.run_rel(model=p)
        self.assertFails2(res, None, re.escape(p))

    def test_missing_input(self):
        p = os.path.join(self.tmp, 'does_not_exist_X.npy')
        res, _ = self.run_rel(xpath=p)
        self.assertFails2(res, None, re.escape(p))

    def test_output_directory_missing(self):
        xp = self.save_x(self.x)
        rp = os.path.join(self.tmp, 'no_such_dir', 'R.npy')
        res = T.run_geolrp(['relevance', '--model', self.model, '--input', xp, '--output', rp])
        self.assertNoCrash(res)
        self.assertIn(res.code, (1, 2), repr(res))
        self.assertIn('no_such_dir', res.stderr)


class TestSummaryLine(ErrBase):
    """The closing line of `relevance` when conservation cannot be stated: scores that sum to
    0 (nothing put in) and scores that are NaN or infinite. Both are runs that succeed."""

    def _gemm_then(self, divisor):
        W = numpy_helper.from_array(np.zeros((3, 8), np.float32), 'W')
        d = numpy_helper.from_array(np.array([divisor], np.float32), 'd')
        g = helper.make_graph(
            [helper.make_node('Gemm', ['input', 'W'], ['h'], transB=1),
             helper.make_node('Div', ['h', 'd'], ['y'])], 'summary',
            [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['N', 8])],
            [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)], [W, d])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)])
        m.ir_version = 7
        p = self.path('summary.onnx')
        onnx.save(m, p)
        return p

    def test_zero_and_nonfinite_scores(self):
        x = np.ones((4, 8), np.float32)
        for divisor, expect in ((1.0, r'no relevance was put in'),
                                (0.0, r'NaN or infinite')):
            with self.subTest(divisor=divisor):
                res, rp = self.run_rel(model=self._gemm_then(divisor), x=x,
                                       extra=['--overwrite'])
                self.assertExit(res, 0)
                self.assertRegex(res.stderr, expect)
                self.assertNotRegex(res.stderr, r'\bnan\b')


class TestOptions(ErrBase):
    def test_invalid_options(self):
        bad = {
            'alpha-beta != 1': ['--rule', '#1=alpha-beta', '--alpha', '3', '--beta', '1'],
            'negative beta': ['--rule', '#1=alpha-beta', '--alpha', '0.5', '--beta', '-0.5'],
            'unknown composite': ['--composite', 'epsilon-foo'],
            'unknown rule': ['--rule', '#1=zminus'],
            'unknown rule by name': ['--rule', '/conv2/Conv=bogus'],
            'batch 0': ['--batch', '0'],
            'batch negative': ['--batch', '-3'],
            'batch not a number': ['--batch', 'two'],
            'unknown init': ['--init', 'softmax'],
            'unknown maxpool mode': ['--maxpool', 'average'],
            'unknown option': ['--frobnicate'],
            'rule without =': ['--rule', 'epsilon'],
            'rule index out of range': ['--rule', '#99=epsilon'],
            'rule unknown node': ['--rule', '/nope/Conv=epsilon'],
            'target out of range': ['--target', '6'],
            'target negative': ['--target', '-1'],
            'epsilon not a number': ['--epsilon', 'abc'],
            'bounds wrong channel count': ['--composite', 'epsilon-gamma-box', '--low', '-1,-1',
                                           '--high', '1,1'],
        }
        for label, extra in bad.items():
            with self.subTest(option=label):
                res, rp = self.run_rel(extra=extra)
                self.assertFails2(res)
                self.assertFalse(os.path.exists(rp), 'output written despite error')

    def test_no_arguments_and_unknown_command(self):
        for args in ([], ['frobnicate'], ['relevance'], ['relevance', '--model', self.model]):
            with self.subTest(args=args):
                res = T.run_geolrp(args)
                self.assertFails2(res)

    def test_quiet(self):
        xp = self.save_x(self.x)
        rp = self.path('R.npy')
        res = T.run_geolrp(['relevance', '--model', self.model, '--input', xp, '--output', rp, '-q'])
        self.assertExit(res, 0)
        self.assertEqual(res.stderr, '', '-q printed on stderr')
        self.assertEqual(res.stdout, '', '-q printed on stdout')

    def test_output_exists(self):
        xp = self.save_x(self.x)
        rp = self.path('R.npy')
        with open(rp, 'wb') as fh:
            fh.write(b'keep me')
        res = T.run_geolrp(['relevance', '--model', self.model, '--input', xp, '--output', rp])
        self.assertFails2(res)
        self.assertEqual(open(rp, 'rb').read(), b'keep me', 'existing output modified')
        res = T.run_geolrp(['relevance', '--model', self.model, '--input', xp, '--output', rp,
                            '--overwrite'])
        self.assertExit(res, 0)
        self.assertEqual(np.load(rp).shape, self.x.shape)


if __name__ == '__main__':
    T.main()
