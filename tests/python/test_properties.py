#!/usr/bin/python3
"""Properties of geolrp's relevance that follow from the rules (lrp-rules.md, "Checks that
follow from the rules"), checked on geolrp's own outputs (R.npy and the --report JSON).

Run: /usr/bin/python3 tests/python/test_properties.py --geolrp build/geolrp
"""

import os

import numpy as np
import torch

import geolrp_testlib as T
import lrp_oracle as lo
import models

CONS_RTOL = 1e-5


class PropBase(T.GeolrpTestCase):
    def model_path(self, case):
        d = os.path.join(self.tmp, 'models')
        os.makedirs(d, exist_ok=True)
        return case.export(d)

    def per_sample_sum(self, R):
        return R.astype(np.float64).reshape(R.shape[0], -1).sum(1)


class TestConservation(PropBase):
    def test_lrp0_no_bias_conserves(self):
        for name in ('mlp_nobias', 'cnn_nobias'):
            case = models.get(name)
            x = case.data()
            for init in ('one', 'logit', 'prob'):
                for extra in ([], ['--batch', '2']):
                    with self.subTest(model=name, init=init, extra=extra):
                        R, S, rep, _ = self.relevance(self.model_path(case), x,
                                                      ['--composite', 'lrp0', '--init', init] + extra,
                                                      report=True)
                        samples = rep['samples']
                        self.assertEqual(len(samples), x.shape[0])
                        sums = self.per_sample_sum(R)
                        for i, s in enumerate(samples):
                            start = s['relevance_start']
                            self.assertAlmostEqual(s['relevance_input'] / start, 1.0,
                                                   delta=CONS_RTOL,
                                                   msg='report sample %d: input %r start %r'
                                                   % (i, s['relevance_input'], start))
                            self.assertAlmostEqual(sums[i] / start, 1.0, delta=CONS_RTOL,
                                                   msg='R.npy sample %d: sum %r start %r'
                                                   % (i, sums[i], start))
                            self.assertAlmostEqual(s['conservation'], 1.0, delta=CONS_RTOL)

    def test_zplus_nonnegative_input_conserves_and_is_nonnegative(self):
        """zplus conserves up to the stabiliser's leak (R*eps/(u+eps) per neuron, about
        1e-5 here); the exact expected sums come from the oracle."""
        for name in ('mlp_nobias', 'cnn_nobias'):
            case = models.get(name)
            x = np.abs(case.data())
            with self.subTest(model=name):
                R, S, rep, _ = self.relevance(self.model_path(case), x,
                                              ['--composite', 'zplus', '--init', 'one'], report=True)
                self.assertTrue((R >= 0).all(), 'negative relevance: min %r' % R.min())
                ref, _ = lo.Oracle(case.module).relevance(x, composite='zplus', init='one')
                expected = ref.numpy().reshape(x.shape[0], -1).sum(1)
                np.testing.assert_allclose(expected, 1.0, atol=1e-4)   # leak is small
                sums = self.per_sample_sum(R)
                np.testing.assert_allclose(sums, expected, rtol=0, atol=1e-6)
                np.testing.assert_allclose([s['relevance_input'] for s in rep['samples']], expected,
                                           rtol=0, atol=1e-6)

    def test_zplus_nonnegative_input_with_bias_is_nonnegative(self):
        for name in ('mlp', 'cnn_a', 'concat', 'onnx_conv', 'onnx_gemm', 'onnx_conv_bn'):
            case = models.get(name)
            x = np.abs(case.data())
            for comp in ('zplus', 'alpha1-beta0'):
                with self.subTest(model=name, composite=comp):
                    R, _, rep, _ = self.relevance(self.model_path(case), x,
                                                  ['--composite', comp, '--init', 'one'], report=True)
                    self.assertTrue((R >= 0).all(), 'negative relevance: min %r' % R.min())
                    # the bias absorbs relevance: the input never gets more than the start
                    for s in rep['samples']:
                        self.assertLessEqual(s['relevance_input'], s['relevance_start'] * (1 + 1e-6))


class TestGradientTimesInput(PropBase):
    """LRP-0 on a bias-free ReLU net: with R_out = z_t (init logit) it equals gradient x
    input exactly; with R_out = 1 (init one) it equals gradient x input / z_t (lrp-rules.md
    says 'with one initialisation ... equals gradient x input'; that holds only up to this
    per-sample factor 1/z_t, since every rule is linear in R_out)."""

    def test_lrp0_logit_equals_gradient_times_input(self):
        for name in ('mlp_nobias', 'cnn_nobias'):
            case = models.get(name)
            x = case.data()
            with self.subTest(model=name):
                R, S, _, _ = self.relevance(self.model_path(case), x, ['--composite', 'lrp0',
                                                                       '--init', 'logit'])
                t = S.argmax(1)
                gi = lo.gradient_times_input(case.module, x, t).numpy()
                self.assertRelClose(R, gi, T.R_RTOL, 'LRP-0 logit vs grad x input')

    def test_lrp0_one_equals_gradient_times_input_over_logit(self):
        for name in ('mlp_nobias', 'cnn_nobias'):
            case = models.get(name)
            x = case.data()
            with self.subTest(model=name):
                R, S, _, _ = self.relevance(self.model_path(case), x, ['--composite', 'lrp0',
                                                                       '--init', 'one'])
                t = S.argmax(1)
                gi = lo.gradient_times_input(case.module, x, t).numpy()
                zt = S[np.arange(len(t)), t].astype(np.float64)
                ref = gi / zt.reshape((-1,) + (1,) * (gi.ndim - 1))
                self.assertRelClose(R, ref, T.R_RTOL, 'LRP-0 one vs grad x input / z_t')


class TestReport(PropBase):
    def test_report_consistent_with_outputs(self):
        for name in ('cnn_a', 'resnet', 'mlp_bn', 'onnx_gemm'):
            case = models.get(name)
            x = case.data()
            for init in ('one', 'logit', 'prob'):
                with self.subTest(model=name, init=init):
                    R, S, rep, _ = self.relevance(self.model_path(case), x,
                                                  ['--init', init, '--composite', 'epsilon-plus'],
                                                  report=True)
                    samples = rep['samples']
                    self.assertEqual([s['index'] for s in samples], list(range(x.shape[0])))
                    sums = self.per_sample_sum(R)
                    z = S.astype(np.float64)
                    p = np.exp(z - z.max(1, keepdims=True))
                    p /= p.sum(1, keepdims=True)
                    for i, s in enumerate(samples):
                        t = int(np.argmax(z[i]))
                        self.assertEqual(s['target'], t)
                        self.assertAlmostEqual(s['score'], z[i, t], delta=1e-5 * np.abs(z[i]).max())
                        start = {'one': 1.0, 'logit': z[i, t], 'prob': p[i, t]}[init]
                        self.assertAlmostEqual(s['relevance_start'], start, delta=1e-5 * abs(start))
                        tol = 1e-5 * max(np.abs(R[i]).sum(), 1e-30)
                        self.assertAlmostEqual(s['relevance_input'], sums[i], delta=tol)
                        self.assertAlmostEqual(s['conservation'],
                                               s['relevance_input'] / s['relevance_start'],
                                               delta=1e-5 * abs(s['conservation']) + 1e-12)

    def test_report_target_index(self):
        case = models.get('cnn_a')
        x = case.data()
        R, S, rep, _ = self.relevance(self.model_path(case), x, ['--target', '2', '--init', 'logit'],
                                      report=True)
        for i, s in enumerate(rep['samples']):
            self.assertEqual(s['target'], 2)
            self.assertAlmostEqual(s['relevance_start'], float(S[i, 2]), delta=1e-5 * abs(S[i]).max())


class TestZeroInputs(PropBase):
    def test_zero_valued_inputs(self):
        """flat and wsquare give relevance to zero-valued inputs; rules multiplying by x
        give them none."""
        case = models.get('cnn_a')
        x = case.data()
        x[:, :, 3:6, 4:8] = 0.0
        zero = (x == 0)
        for rule in ('epsilon', 'lrp0', 'zplus', 'alpha2-beta1', 'gamma', 'zbox'):
            with self.subTest(rule=rule):
                R, _, _, _ = self.relevance(self.model_path(case), x,
                                            ['--composite', 'epsilon', '--rule', '#0=%s' % rule])
                if rule == 'zbox':
                    # zbox: x * W^T s - l * W+^T s - h * W-^T s is not zero at x = 0
                    self.assertTrue(np.abs(R[zero]).max() > 0)
                else:
                    self.assertEqual(np.abs(R[zero]).max(), 0.0)
        for rule in ('flat', 'wsquare'):
            with self.subTest(rule=rule):
                R, _, _, _ = self.relevance(self.model_path(case), x,
                                            ['--composite', 'epsilon', '--rule', '#0=%s' % rule])
                self.assertTrue(np.abs(R[zero]).max() > 0)


if __name__ == '__main__':
    T.main()
