#!/usr/bin/python3
"""geolrp synth and geolrp eval: the benchmark's headline relations on shipped zoo models.

Run: /usr/bin/python3 tests/python/test_eval.py --geolrp build/geolrp
"""

import json
import os
import shutil
import tempfile
import unittest

import numpy as np

import scene_testlib as S

ZOO = os.path.join(S.REPO, 'data', 'models', 'zoo')
X_RULES = ('lrp0', 'epsilon', 'zplus', 'epsilon-alpha2-beta1')  # multiply by the input
# flat and wsquare ignore the input; zbox's bound terms (l W+ s, h W- s) do not vanish at 0
SEES_ZEROS = ('flat', 'wsquare', 'epsilon-gamma-box')


def run_eval(tmp, variant, arch, composites, count=120, extra=()):
    data = os.path.join(tmp, variant)
    if not os.path.exists(data):
        r = S.run(['synth', '-o', data, '--variant', variant, '--count', '400', '--seed', '5',
                   '-q'])
        assert r.code == 0, r
    out = os.path.join(tmp, '%s_%s_%d.json' % (variant, arch, abs(hash(composites)) % 10000))
    r = S.run(['eval', '-m', os.path.join(ZOO, '%s__%s.onnx' % (variant, arch)),
               '--input', os.path.join(data, 'X.npy'), '--masks',
               os.path.join(data, 'masks.npy'), '--labels', os.path.join(data, 'labels.npy'),
               '--composite', ','.join(composites), '--max-samples', str(count), '--json', out,
               '--markdown', out + '.md', '--overwrite', '-q'] + list(extra), timeout=600)
    assert r.code == 0, r
    with open(out) as f:
        doc = json.load(f)
    return {row['composite']: row for row in doc['results']}


def mean(row, key):
    return row[key]['mean']


class Synth(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='geolrp_synth_')

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_variants_and_ground_truth(self):
        r = S.run(['synth', '-o', self.tmp, '--count', '50', '--seed', '9', '-q'])
        self.assertEqual(r.code, 0, r)
        for v in ('noise', 'zero', 'shifted', 'absence', 'border', 'multiband'):
            d = os.path.join(self.tmp, v)
            X = np.load(os.path.join(d, 'X.npy'))
            M = np.load(os.path.join(d, 'masks.npy'))
            L = np.load(os.path.join(d, 'labels.npy'))
            with open(os.path.join(d, 'meta.json')) as f:
                meta = json.load(f)
            self.assertEqual(X.shape, (50, 4 if v == 'multiband' else 1, 32, 32))
            self.assertTrue(np.all(M.sum(axis=(1, 2)) == 36))  # one 6x6 square
            self.assertEqual(int(L.sum()), meta['class_1'])
            self.assertTrue(os.path.exists(os.path.join(d, 'sample_000.tif')))
            sq = X[:, 0][M > 0].reshape(50, 36).mean(axis=1)
            bg = meta['bg_level']
            if v == 'absence':
                np.testing.assert_allclose(sq[L == 1], bg + 0.5, atol=1e-6)
                np.testing.assert_allclose(sq[L == 0], bg, atol=1e-6)
            else:
                # the class square's sign decides the class (noise averages out)
                self.assertTrue(np.all(sq[L == 1] > bg + 0.3) and np.all(sq[L == 0] < bg - 0.3))
            if v == 'zero':
                self.assertGreater((X == 0).mean(), 0.8)
            if v == 'border':
                ys, xs = np.nonzero(M.max(axis=0) * 0 + M[0])
                self.assertTrue(ys.min() == 0 or xs.min() == 0 or ys.max() == 31 or xs.max() == 31)
            if v == 'multiband':  # bands 2 and 4 do not carry the square
                self.assertTrue(np.all(np.abs(X[:, 1][M > 0].mean() - X[:, 3][M > 0].mean()) < 0.1))
        # a sample depends only on (seed, index)
        r = S.run(['synth', '-o', os.path.join(self.tmp, 'again'), '--variant', 'noise',
                   '--count', '10', '--seed', '9', '-q'])
        self.assertEqual(r.code, 0, r)
        a = np.load(os.path.join(self.tmp, 'noise', 'X.npy'))[:10]
        b = np.load(os.path.join(self.tmp, 'again', 'X.npy'))
        self.assertTrue(np.array_equal(a, b))


class Headlines(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='geolrp_eval_')

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_absence_is_invisible_to_rules_that_multiply_by_the_input(self):
        rows = run_eval(self.tmp, 'absence', 'cnn_maxpool', X_RULES + SEES_ZEROS,
                        extra=['--no-randomization'])
        for c in X_RULES:  # the absent square is 0: it can never get relevance
            m = rows[c]['mass_accuracy_class_0']
            self.assertTrue(m['mean'] is None or m['mean'] < 1e-6, (c, m))
        for c in SEES_ZEROS:  # non-zero (flat: about the square's area share, 36/1024)
            self.assertGreater(mean(rows[c], 'mass_accuracy_class_0'), 0.01, c)

    def test_zero_inputs_get_no_relevance(self):
        rows = run_eval(self.tmp, 'zero', 'cnn_maxpool', ('epsilon', 'flat'),
                        extra=['--no-randomization'])
        self.assertEqual(mean(rows['epsilon'], 'zero_input_share'), 0.0)
        self.assertGreater(mean(rows['flat'], 'zero_input_share'), 0.2)

    def test_randomization_and_pixel_flipping(self):
        rows = run_eval(self.tmp, 'noise', 'cnn_maxpool', ('epsilon', 'epsilon-gamma-box'))
        for c, row in rows.items():
            # destroying every layer changes the explanation of the trained CNN
            self.assertLess(mean(row, 'randomization_all_spearman'), 0.8, c)
            self.assertLess(mean(row, 'randomization_all_spearman'),
                            mean(row, 'randomization_top_spearman'), c)
            # removing the most relevant pixels hurts far more than removing random ones
            self.assertGreater(mean(row, 'aopc_morf'), 2 * mean(row, 'aopc_random'), c)
            self.assertGreater(mean(row, 'relevance_mass_accuracy'), 0.2, c)
            self.assertGreater(mean(row, 'accuracy'), 0.95, c)

    def test_multiband_signal_bands(self):
        rows = run_eval(self.tmp, 'multiband', 'cnn_maxpool', ('epsilon-gamma-box',),
                        extra=['--no-randomization'])
        share = [b['mean'] for b in rows['epsilon-gamma-box']['band_share']]
        self.assertEqual(len(share), 4)
        self.assertGreater(share[0] + share[2], share[1] + share[3])

    def test_usage_errors(self):
        r = S.run(['eval', '-m', os.path.join(ZOO, 'noise__cnn_maxpool.onnx')])
        self.assertEqual(r.code, 2, r)
        r = S.run(['eval', '--benchmark', '--zoo', self.tmp])
        self.assertEqual(r.code, 2, r)  # no zoo.json there
        r = S.run(['eval', '--benchmark', '--composite', 'nonsense'])
        self.assertEqual(r.code, 2, r)


if __name__ == '__main__':
    S.parse_argv()
    unittest.main(verbosity=2)
