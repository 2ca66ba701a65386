#!/usr/bin/python3
"""SIGINT / SIGTERM during a run: the process stops with 130 / 143 and leaves neither the
output nor any temporary file behind.

Run: /usr/bin/python3 tests/python/test_signals.py --geolrp build/geolrp
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import scene_testlib as S


class Signals(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='geolrp_sig_')
        # A model big enough that the run lasts seconds, small enough to export fast.
        self.model = os.path.join(self.tmp, 'm.onnx')
        S.make_cnn(self.model, 10, tile=32)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def interrupt(self, sig, code, args, outputs):
        out_dir = os.path.join(self.tmp, 'out')
        os.makedirs(out_dir)
        proc = subprocess.Popen([S.binary()] + [str(a) for a in args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        # Wait until the run has created its temporaries, then interrupt it.
        deadline = time.time() + 30
        while time.time() < deadline and not os.listdir(out_dir):
            time.sleep(0.05)
        time.sleep(0.3)
        self.assertIsNone(proc.poll(), 'the run ended before it could be interrupted')
        proc.send_signal(sig)
        proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, code)
        self.assertEqual(os.listdir(out_dir), [], 'files left behind')
        for p in outputs:
            self.assertFalse(os.path.exists(p))

    def test_sigint_explain(self):
        out = os.path.join(self.tmp, 'out', 'rel.tif')
        self.interrupt(signal.SIGINT, 130,
                       ['explain', S.LANDSAT8, '-m', self.model, '-o', out, '--stride', '4',
                        '--class-map', os.path.join(self.tmp, 'out', 'c.tif'), '-q'], [out])

    def test_sigterm_relevance(self):
        import numpy as np
        x = os.path.join(self.tmp, 'x.npy')
        np.save(x, np.random.default_rng(0).normal(size=(4000, 10, 32, 32)).astype('float32'))
        out = os.path.join(self.tmp, 'out', 'r.npy')
        self.interrupt(signal.SIGTERM, 143,
                       ['relevance', '-m', self.model, '-i', x, '-o', out, '--scores',
                        os.path.join(self.tmp, 'out', 's.npy'), '-q'], [out])


if __name__ == '__main__':
    S.parse_argv()
    unittest.main(verbosity=2)
