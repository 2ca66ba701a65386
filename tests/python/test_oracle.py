#!/usr/bin/python3
"""Self-checks of the LRP oracle (no geolrp binary needed): hand-worked examples, an
explicit-matrix re-implementation of every linear rule, and torch facts (LRP-0 with init
one and no bias == gradient x input; conservation)."""

import unittest

import numpy as np
import torch

import geolrp_testlib as T
import lrp_oracle as lo
import models


def dense_L(W, b):
    return dict(ltype='dense', weight=torch.tensor(W, dtype=torch.float64),
                bias=None if b is None else torch.tensor(b, dtype=torch.float64))


class HandWorked(unittest.TestCase):
    # x = [2, 1], W = [[1, -1], [2, 1]], b = [0, 1]  ->  z = [1, 6]
    W = [[1.0, -1.0], [2.0, 1.0]]
    b = [0.0, 1.0]
    x = torch.tensor([[2.0, 1.0]], dtype=torch.float64)
    R = torch.tensor([[1.0, 0.0]], dtype=torch.float64)

    def test_lrp0(self):
        # s = [1, 0]; W^T s = [1, -1]; R_in = [2, -1]
        r = lo.rule_epsilon(dense_L(self.W, self.b), self.x, self.R, 0.0)
        np.testing.assert_allclose(r.numpy(), [[2.0, -1.0]])

    def test_epsilon(self):
        r = lo.rule_epsilon(dense_L(self.W, self.b), self.x, self.R, 0.5)
        np.testing.assert_allclose(r.numpy(), [[2 / 1.5, -1 / 1.5]])

    def test_zplus(self):
        # u0 = 1*2 + 0*1 = 2 -> s0 = .5; R_in = [2*1*.5, 1*0*.5]
        r = lo.rule_zplus(dense_L(self.W, self.b), self.x, self.R, 0.0)
        np.testing.assert_allclose(r.numpy(), [[1.0, 0.0]])

    def test_alpha_beta(self):
        # u0 = 2, v0 = -1 (W-x+ = -1*1); R_in = 2*(x+ W+ /2) - 1*(x+ W- / -1)
        r = lo.rule_alpha_beta(dense_L(self.W, self.b), self.x, self.R, 0.0, 2.0, 1.0)
        np.testing.assert_allclose(r.numpy(), [[2.0, -1.0]])

    def test_gamma(self):
        # gamma .5: P0 = [1.5, -1], u0 = 3 - 1 = 2, z0 = 1 > 0: R_in = x * P0 / 2 = [1.5, -.5]
        r = lo.rule_gamma(dense_L(self.W, self.b), self.x, self.R, 0.0, 0.5)
        np.testing.assert_allclose(r.numpy(), [[1.5, -0.5]])

    def test_flat_wsquare(self):
        r = lo.rule_flat(dense_L(self.W, self.b), self.x, self.R, 0.0)
        np.testing.assert_allclose(r.numpy(), [[0.5, 0.5]])
        # (W∘W)1 + b² for row 0: 1 + 1 + 0 = 2 -> [1/2, 1/2]
        r = lo.rule_wsquare(dense_L(self.W, self.b), self.x, self.R, 0.0)
        np.testing.assert_allclose(r.numpy(), [[0.5, 0.5]])
        # row 1 with bias 1: 4 + 1 + 1 = 6 -> [4/6, 1/6]
        r = lo.rule_wsquare(dense_L(self.W, self.b), self.x, torch.tensor([[0.0, 1.0]],
                                                                           dtype=torch.float64), 0.0)
        np.testing.assert_allclose(r.numpy(), [[4 / 6, 1 / 6]])

    def test_zbox(self):
        # l = -1, h = 3: z0 = 1 - (1*-1) - (-1*3) = 5; R_in = (x*w - l*w+ - h*w-)/5
        r = lo.rule_zbox(dense_L(self.W, self.b), self.x, self.R, 0.0, -1.0, 3.0)
        np.testing.assert_allclose(r.numpy(), [[(2 + 1) / 5, (-1 + 3) / 5]])

    def test_stab_zero_positive_and_00(self):
        v = torch.tensor([0.0, -0.0, 1.0, -1.0], dtype=torch.float64)
        np.testing.assert_allclose(lo.stab(v, 0.1).numpy(), [0.1, 0.1, 1.1, -1.1])
        np.testing.assert_allclose(lo.safe_div(torch.zeros(2, dtype=torch.float64),
                                               torch.zeros(2, dtype=torch.float64)).numpy(), [0, 0])

    def test_flat_conv_padding_counts(self):
        L = dict(ltype='conv', weight=torch.ones(1, 1, 3, 3, dtype=torch.float64), bias=None,
                 pads=(1, 1, 1, 1), stride=(1, 1), dilation=(1, 1), groups=1)
        x = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
        R = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
        R[0, 0, 0, 0] = 1.0      # corner output sees 4 inputs
        r = lo.rule_flat(L, x, R, 0.0)
        exp = np.zeros((3, 3))
        exp[:2, :2] = 0.25
        np.testing.assert_allclose(r[0, 0].numpy(), exp)


def conv_matrix(L, in_shape):
    """Explicit matrix of a (bias-free) linear map, built column by column."""
    n = int(np.prod(in_shape[1:]))
    cols = []
    for i in range(n):
        e = torch.zeros((1, n), dtype=torch.float64)
        e[0, i] = 1
        cols.append(lo.lin_forward(L, e.reshape((1,) + tuple(in_shape[1:])), L['weight'], None).reshape(-1))
    return torch.stack(cols, 1).numpy()        # (out, in)


def matrix_rules(M, bias_out, x, R, rule, eps, gamma=0.25, alpha=2.0, beta=1.0, l=None, h=None):
    """Literal lrp-rules.md formulas with explicit numpy matrices (one sample)."""
    st = lambda v: v + eps * np.where(v >= 0, 1.0, -1.0)
    div = lambda a, d: np.where(d != 0, a / np.where(d != 0, d, 1), 0.0)
    Mp, Mn = np.maximum(M, 0), np.minimum(M, 0)
    xp, xn = np.maximum(x, 0), np.minimum(x, 0)
    b = bias_out
    bp, bn = np.maximum(b, 0), np.minimum(b, 0)
    if rule == 'epsilon':
        s = div(R, st(M @ x + b))
        return x * (M.T @ s)
    if rule == 'zplus':
        s = div(R, st(Mp @ xp + bp + Mn @ xn))
        return xp * (Mp.T @ s) + xn * (Mn.T @ s)
    if rule == 'alpha-beta':
        su = div(R, st(Mp @ xp + bp + Mn @ xn))
        sv = div(R, st(Mn @ xp + bn + Mp @ xn))
        return alpha * (xp * (Mp.T @ su) + xn * (Mn.T @ su)) - beta * (xp * (Mn.T @ sv) + xn * (Mp.T @ sv))
    if rule == 'gamma':
        P, N = M + gamma * Mp, M + gamma * Mn
        z = M @ x + b
        su = div(R * (z > 0), st(P @ xp + N @ xn + b + gamma * bp))
        sv = div(R * (z < 0), st(N @ xp + P @ xn + b + gamma * bn))
        return xp * (P.T @ su) + xn * (N.T @ su) + xp * (N.T @ sv) + xn * (P.T @ sv)
    if rule == 'zbox':
        s = div(R, st(M @ x - Mp @ l - Mn @ h))
        return x * (M.T @ s) - l * (Mp.T @ s) - h * (Mn.T @ s)
    if rule == 'flat':
        O = (M != 0).astype(float)      # structural ones (receptive field incl. no padding)
        s = div(R, st(O @ np.ones_like(x)))
        return O.T @ s
    if rule == 'wsquare':
        M2 = M * M
        s = div(R, st(M2 @ np.ones_like(x) + b * b))
        return M2.T @ s
    raise ValueError(rule)


class MatrixCrossCheck(unittest.TestCase):
    """Every rule on a padded, strided, grouped conv and on a dense layer vs explicit matrices."""

    def _layers(self):
        g = torch.Generator().manual_seed(5)
        conv = dict(ltype='conv', weight=torch.randn(4, 2, 3, 3, generator=g, dtype=torch.float64),
                    bias=torch.randn(4, generator=g, dtype=torch.float64) * 0.3,
                    pads=(0, 1, 2, 1), stride=(2, 1), dilation=(1, 1), groups=2)
        dense = dict(ltype='dense', weight=torch.randn(5, 7, generator=g, dtype=torch.float64),
                     bias=torch.randn(5, generator=g, dtype=torch.float64) * 0.3)
        return [(conv, (1, 4, 5, 5)), (dense, (1, 7))]

    def test_rules(self):
        g = torch.Generator().manual_seed(6)
        for L, shape in self._layers():
            x = torch.randn(shape, generator=g, dtype=torch.float64)
            M = conv_matrix(L, shape)
            zb = lo.lin_forward(L, x, L['weight'], L['bias']).reshape(-1).numpy()
            b_out = zb - M @ x.reshape(-1).numpy()
            out_shape = lo.lin_forward(L, x, L['weight'], L['bias']).shape
            R = torch.randn(out_shape, generator=g, dtype=torch.float64)
            l, h = -3.0, 2.5
            for rule in ('epsilon', 'zplus', 'alpha-beta', 'gamma', 'zbox', 'flat', 'wsquare'):
                with self.subTest(layer=L['ltype'], rule=rule):
                    if rule == 'epsilon':
                        got = lo.rule_epsilon(L, x, R, 0.01)
                    elif rule == 'zplus':
                        got = lo.rule_zplus(L, x, R, 0.01)
                    elif rule == 'alpha-beta':
                        got = lo.rule_alpha_beta(L, x, R, 0.01, 2.0, 1.0)
                    elif rule == 'gamma':
                        got = lo.rule_gamma(L, x, R, 0.01, 0.25)
                    elif rule == 'zbox':
                        got = lo.rule_zbox(L, x, R, 0.01, l, h)
                    elif rule == 'flat':
                        got = lo.rule_flat(L, x, R, 0.01)
                    else:
                        got = lo.rule_wsquare(L, x, R, 0.01)
                    xv = x.reshape(-1).numpy()
                    exp = matrix_rules(M, b_out, xv, R.reshape(-1).numpy(), rule, 0.01,
                                       l=np.full_like(xv, l), h=np.full_like(xv, h))
                    np.testing.assert_allclose(got.reshape(-1).numpy(), exp, rtol=1e-10, atol=1e-12)


class TorchFacts(unittest.TestCase):
    def test_lrp0_no_bias_is_gradient_times_input(self):
        """With R_out = z_t (init logit) LRP-0 on a bias-free ReLU net is exactly gradient x
        input; with R_out = 1 (init one) every layer divides by z_t once at the top, so it is
        gradient x input / z_t (the rules are linear in R_out)."""
        for name in ('mlp_nobias', 'cnn_nobias'):
            case = models.get(name)
            x = case.data()
            o = lo.Oracle(case.module)
            R, info = o.relevance(x, composite='lrp0', init='logit')
            gi = lo.gradient_times_input(case.module, x, info['target'])
            np.testing.assert_allclose(R.numpy(), gi.numpy(), rtol=1e-9, atol=1e-12)
            R1, info = o.relevance(x, composite='lrp0', init='one')
            zt = info['logits'].gather(1, info['target'][:, None]).reshape((-1,) + (1,) * (R.dim() - 1))
            np.testing.assert_allclose(R1.numpy(), (gi / zt).numpy(), rtol=1e-9, atol=1e-12)

    def test_conservation_lrp0_no_bias(self):
        for name in ('mlp_nobias', 'cnn_nobias'):
            case = models.get(name)
            x = case.data()
            R, info = lo.Oracle(case.module).relevance(x, composite='lrp0', init='logit')
            np.testing.assert_allclose(R.sum(dim=tuple(range(1, R.dim()))).numpy(),
                                       info['R_out'].sum(1).numpy(), rtol=1e-9)

    def test_gamma_zero_is_epsilon_and_alpha1_is_zplus(self):
        case = models.get('cnn_a')
        x = case.data()
        o = lo.Oracle(case.module)
        a, _ = o.relevance(x, composite='gamma', gamma=0.0, stab_eps=1e-6)
        b, _ = o.relevance(x, composite='epsilon', epsilon=1e-6)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)
        a, _ = o.relevance(x, composite='alpha1-beta0')
        b, _ = o.relevance(x, composite='zplus')
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)

    def test_forward_matches_torch(self):
        for case in models.CASES:
            x = case.data()
            z = lo.Oracle(case.module).logits(x).numpy()
            np.testing.assert_allclose(z, case.scores(x), rtol=0, atol=1e-5 * np.abs(z).max())

    def test_first_layers(self):
        firsts = {c.name: [L.first for L in lo.Oracle(c.module).graph.linears] for c in models.CASES}
        self.assertEqual(firsts['concat'], [True, True, False, False])
        self.assertEqual(firsts['resnet'], [True, False, False, False, False])
        self.assertEqual(firsts['mlp_bn'], [True, False, False, False])


if __name__ == '__main__':
    T.main()
