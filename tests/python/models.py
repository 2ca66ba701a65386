"""Test models for the geolrp reference suite.

Every model is a ``Case``: a float32 PyTorch module (the reference for forward scores and
the input of the LRP oracle) plus a way to produce ONNX files of it:
- torch models are exported with torch.onnx.export at several opsets (eval mode; the
  BatchNorms are kept as BatchNormalization nodes by exporting with
  TrainingMode.PRESERVE, so that geolrp's own folding is exercised);
- hand-built models (onnx.helper) cover what torch does not emit (Gemm with
  transB / alpha / beta, MatMul + Add bias, Conv with asymmetric pads, depthwise Conv,
  Dropout / Identity nodes, float_data initializers); for those the module is an
  equivalent PyTorch module written by hand.
"""

import io
import os
import warnings

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import torch
import torch.nn as nn

from lrp_oracle import Dense, PadConv2d

warnings.filterwarnings('ignore')


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------

def _randomise_bn(model, seed):
    """Give every BatchNorm non-trivial running stats and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.3)
                m.weight.copy_(torch.rand(n, generator=g) * 1.2 + 0.4)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model


def _warm_bn(model, shape, seed, steps=4):
    """A few training-mode forward passes so running stats move, then randomise affine."""
    g = torch.Generator().manual_seed(seed + 1)
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randn((8,) + tuple(shape), generator=g) * 1.3 + 0.2)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=g) * 1.2 + 0.4)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    model.eval()
    return model


# --------------------------------------------------------------------------------------
# torch models
# --------------------------------------------------------------------------------------

class MLP(nn.Module):
    def __init__(self, bias=True):
        super().__init__()
        self.fc1 = nn.Linear(12, 24, bias=bias)
        self.fc2 = nn.Linear(24, 16, bias=bias)
        self.fc3 = nn.Linear(16, 5, bias=bias)

    def forward(self, x):
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


class MLPBN(nn.Module):
    """BN on the input (not foldable: pass), constant Mul/Add, BN after Linear (folded),
    Dropout, Tanh, LeakyReLU, final Softmax."""

    def __init__(self):
        super().__init__()
        self.bn0 = nn.BatchNorm1d(12)
        self.fc1 = nn.Linear(12, 24)
        self.bn1 = nn.BatchNorm1d(24)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(24, 16)
        self.act2 = nn.Tanh()
        self.fc3 = nn.Linear(16, 16)
        self.act3 = nn.LeakyReLU(0.1)
        self.fc4 = nn.Linear(16, 4)
        self.sm = nn.Softmax(dim=1)

    def forward(self, x):
        x = self.bn0(x) * 0.5 + 0.1
        x = self.drop(torch.relu(self.bn1(self.fc1(x))))
        x = self.act2(self.fc2(x))
        x = self.act3(self.fc3(x))
        return self.sm(self.fc4(x))


class CNNA(nn.Module):
    """conv(pad) + BN + ReLU + maxpool, strided conv, avgpool count_include_pad=True,
    x.view(x.size(0), -1), Linear + BN1d (folded), Linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 12, 3, stride=2, padding=1)
        self.pool2 = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=True)
        self.fc1 = nn.Linear(12 * 3 * 3, 32)
        self.bn2 = nn.BatchNorm1d(32)
        self.fc2 = nn.Linear(32, 6)

    def forward(self, x):
        x = self.pool1(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool2(torch.relu(self.conv2(x)))
        x = x.view(x.size(0), -1)
        x = torch.relu(self.bn2(self.fc1(x)))
        return self.fc2(x)


class CNNB(nn.Module):
    """in-graph normalisation, LeakyReLU, overlapping maxpool with padding, Tanh,
    avgpool count_include_pad=False, torch.flatten, Sigmoid, final Softmax."""

    def __init__(self):
        super().__init__()
        self.register_buffer('mean', torch.tensor([0.2, -0.1, 0.05]).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor([1.2, 0.8, 1.1]).view(1, 3, 1, 1))
        self.conv1 = nn.Conv2d(3, 6, 5, padding=2)
        self.act1 = nn.LeakyReLU(0.2)
        self.pool1 = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(6, 10, 3, padding=1)
        self.act2 = nn.Tanh()
        self.pool2 = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.fc1 = nn.Linear(10 * 4 * 4, 20)
        self.act3 = nn.Sigmoid()
        self.fc2 = nn.Linear(20, 5)
        self.sm = nn.Softmax(dim=1)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = self.act3(self.fc1(x))
        return self.sm(self.fc2(x))


class ResNet(nn.Module):
    """stem conv+BN+ReLU, one residual block (Add of two activations), strided conv,
    GlobalAveragePool, flatten, Linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(8)
        self.conv4 = nn.Conv2d(8, 12, 3, stride=2, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(x)))
        y = self.bn3(self.conv3(y))
        x = torch.relu(x + y)
        x = torch.relu(self.conv4(x))
        x = self.gap(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


class ConcatNet(nn.Module):
    """Two branches from the input (both are first layers), channel Concat."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 1)
        self.conv = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 2 * 2, 4)

    def forward(self, x):
        a = torch.relu(self.a(x))
        b = torch.relu(self.b(x))
        x = torch.cat([a, b], dim=1)
        x = self.pool(torch.relu(self.conv(x)))
        x = x.view(x.size(0), -1)
        return self.fc(x)


class SingleOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 1)

    def forward(self, x):
        x = self.gap(torch.relu(self.conv(x)))
        return self.fc(torch.flatten(x, 1))


class CNNNoBias(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1, bias=False)
        self.fc = nn.Linear(8 * 4 * 4, 5, bias=False)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        x = x.view(x.size(0), -1)
        return self.fc(x)


class PoolFirst(nn.Module):
    """MaxPool (overlapping, padded) directly on the input: with tie-rich data this tests
    winner-takes-all ties (first in scan order) and accumulation over overlapping windows."""

    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = torch.relu(self.conv(self.pool(x)))
        return self.fc(torch.flatten(x, 1))


class CNNCeil(nn.Module):
    """MaxPool with ceil_mode on an odd size, Dropout2d-free plain chain, torch.flatten."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 5, 3)
        self.pool1 = nn.MaxPool2d(2, ceil_mode=True)
        self.conv2 = nn.Conv2d(5, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 4 * 4, 4)

    def forward(self, x):
        x = self.pool1(torch.relu(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc(torch.flatten(x, 1))


# --------------------------------------------------------------------------------------
# hand-built ONNX models (+ equivalent torch modules)
# --------------------------------------------------------------------------------------

def _init(name, arr, float_data=False):
    arr = np.asarray(arr, dtype=np.float32)
    if float_data:
        return helper.make_tensor(name, TensorProto.FLOAT, arr.shape, arr.flatten().tolist())
    return numpy_helper.from_array(arr, name)


def _onnx_model(name, nodes, in_shape, out_shape, inits, opset, batch='N'):
    """A checked model of graph `name`: float 'input' of per-sample shape in_shape, float
    'output' of per-sample shape out_shape, a symbolic batch axis, IR version 7."""
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, [batch] + list(in_shape))],
        [helper.make_tensor_value_info('output', TensorProto.FLOAT, [batch] + list(out_shape))],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


def _rand(rng, *shape, scale=None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    scale = scale if scale is not None else 1.0 / np.sqrt(fan_in)
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _gemm_model(opset=13):
    """Gemm(transB=1, alpha=.5, beta=2) -> Relu -> Gemm(transB=0, C (1,out)) -> Relu
    -> MatMul -> Add(bias)."""
    rng = np.random.default_rng(101)
    W1 = _rand(rng, 16, 10)            # (out, in), used with transB=1
    b1 = _rand(rng, 16, scale=0.1)
    W2t = _rand(rng, 12, 16).T.copy()  # stored (in, out) for transB=0
    b2 = _rand(rng, 1, 12, scale=0.1)
    W3t = _rand(rng, 5, 12).T.copy()   # MatMul weight (in, out)
    b3 = _rand(rng, 5, scale=0.1)
    nodes = [
        helper.make_node('Gemm', ['input', 'W1', 'b1'], ['g1'], name='gemm1', alpha=0.5, beta=2.0,
                         transA=0, transB=1),
        helper.make_node('Relu', ['g1'], ['r1'], name='relu1'),
        helper.make_node('Gemm', ['r1', 'W2t', 'b2'], ['g2'], name='gemm2', transB=0),
        helper.make_node('Relu', ['g2'], ['r2'], name='relu2'),
        helper.make_node('MatMul', ['r2', 'W3t'], ['m3'], name='matmul3'),
        helper.make_node('Add', ['m3', 'b3'], ['output'], name='add3'),
    ]
    model = _onnx_model('gemm_net', nodes, [10], [5],
                        [_init('W1', W1, True), _init('b1', b1, True), _init('W2t', W2t),
                         _init('b2', b2, True), _init('W3t', W3t), _init('b3', b3)], opset)

    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))
    module = nn.Sequential(
        Dense(t(W1) * 0.5, t(b1) * 2.0), nn.ReLU(),
        Dense(t(W2t.T), t(b2.reshape(-1))), nn.ReLU(),
        Dense(t(W3t.T), t(b3)))
    return model, module.eval()


def _conv_model(opset=13):
    """Conv(asymmetric pads) -> Relu -> Identity -> depthwise Conv(stride 2) -> Relu ->
    Dropout -> Flatten -> Gemm(transB=1); float_data initializers."""
    rng = np.random.default_rng(202)
    W1 = _rand(rng, 6, 3, 3, 3)
    b1 = _rand(rng, 6, scale=0.1)
    W2 = _rand(rng, 6, 1, 3, 3)
    b2 = _rand(rng, 6, scale=0.1)
    W3 = _rand(rng, 4, 6 * 5 * 5)
    b3 = _rand(rng, 4, scale=0.1)
    nodes = [
        helper.make_node('Conv', ['input', 'W1', 'b1'], ['c1'], name='conv_asym',
                         kernel_shape=[3, 3], pads=[0, 1, 2, 1], strides=[1, 1]),
        helper.make_node('Relu', ['c1'], ['r1'], name='relu1'),
        helper.make_node('Identity', ['r1'], ['i1'], name='ident'),
        helper.make_node('Conv', ['i1', 'W2', 'b2'], ['c2'], name='conv_dw', group=6,
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node('Relu', ['c2'], ['r2'], name='relu2'),
        helper.make_node('Dropout', ['r2'], ['d2'], name='drop'),
        helper.make_node('Flatten', ['d2'], ['f2'], name='flat', axis=1),
        helper.make_node('Gemm', ['f2', 'W3', 'b3'], ['output'], name='fc', transB=1),
    ]
    model = _onnx_model('conv_net', nodes, [3, 9, 9], [4],
                        [_init('W1', W1, True), _init('b1', b1, True), _init('W2', W2, True),
                         _init('b2', b2, True), _init('W3', W3, True), _init('b3', b3, True)],
                        opset)

    t = torch.from_numpy
    module = nn.Sequential(
        PadConv2d(t(W1), t(b1), pads=(0, 1, 2, 1)), nn.ReLU(), nn.Identity(),
        PadConv2d(t(W2), t(b2), pads=(1, 1, 1, 1), stride=(2, 2), groups=6), nn.ReLU(),
        nn.Dropout(0.5), nn.Flatten(1),
        Dense(t(W3), t(b3)))
    return model, module.eval()


def _bias_add_model(opset=13):
    """Mul/Sub by constants on the input (pass), Conv without bias + Add of a (1,C,1,1)
    constant (= its bias), Relu, Flatten, MatMul + Add(constant first) (= its bias)."""
    rng = np.random.default_rng(404)
    W1, b1 = _rand(rng, 4, 2, 3, 3), _rand(rng, 1, 4, 1, 1, scale=0.2)
    W2t, b2 = _rand(rng, 3, 4 * 6 * 6).T.copy(), _rand(rng, 3, scale=0.2)
    scale = np.array([1.5, 0.75], np.float32).reshape(1, 2, 1, 1)
    shift = np.array([0.1, -0.2], np.float32).reshape(1, 2, 1, 1)
    nodes = [
        helper.make_node('Mul', ['input', 'scale'], ['m0'], name='in_mul'),
        helper.make_node('Sub', ['m0', 'shift'], ['s0'], name='in_sub'),
        helper.make_node('Conv', ['s0', 'W1'], ['c1'], name='conv1', pads=[1, 1, 1, 1]),
        helper.make_node('Add', ['c1', 'b1'], ['a1'], name='conv1_bias'),
        helper.make_node('Relu', ['a1'], ['r1'], name='relu1'),
        helper.make_node('Flatten', ['r1'], ['f1'], name='flat'),
        helper.make_node('MatMul', ['f1', 'W2t'], ['m2'], name='fc'),
        helper.make_node('Add', ['b2', 'm2'], ['output'], name='fc_bias'),
    ]
    model = _onnx_model('bias_add_net', nodes, [2, 6, 6], [3],
                        [_init('W1', W1), _init('b1', b1), _init('W2t', W2t), _init('b2', b2),
                         _init('scale', scale), _init('shift', shift)], opset)

    t = torch.from_numpy

    class Equivalent(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer('scale', t(scale))
            self.register_buffer('shift', t(shift))
            self.conv1 = PadConv2d(t(W1), t(b1.reshape(-1)), pads=(1, 1, 1, 1))
            self.fc = Dense(t(W2t.T.copy()), t(b2))

        def forward(self, x):
            x = x * self.scale - self.shift
            x = torch.relu(self.conv1(x))
            return self.fc(torch.flatten(x, 1))

    return model, Equivalent().eval()


def _conv_bn_model(opset=13):
    """Conv -> BatchNormalization (folded) -> Relu -> MaxPool(3, s2) -> Conv(1x1, no bias)
    -> BatchNormalization -> Relu -> GlobalAveragePool -> Flatten -> Gemm."""
    rng = np.random.default_rng(303)
    W1, b1 = _rand(rng, 5, 2, 3, 3), _rand(rng, 5, scale=0.1)
    W2 = _rand(rng, 7, 5, 1, 1)
    W3, b3 = _rand(rng, 3, 7), _rand(rng, 3, scale=0.1)
    bn = []
    for c in (5, 7):
        bn.append(dict(g=(rng.random(c) * 1.2 + 0.4).astype(np.float32),
                       b=(rng.standard_normal(c) * 0.2).astype(np.float32),
                       m=(rng.standard_normal(c) * 0.3).astype(np.float32),
                       v=(rng.random(c) * 1.5 + 0.3).astype(np.float32)))
    inits = [_init('W1', W1), _init('b1', b1), _init('W2', W2), _init('W3', W3), _init('b3', b3)]
    for i, p in enumerate(bn):
        inits += [_init('g%d' % i, p['g']), _init('be%d' % i, p['b']), _init('m%d' % i, p['m']),
                  _init('v%d' % i, p['v'])]
    nodes = [
        helper.make_node('Conv', ['input', 'W1', 'b1'], ['c1'], name='conv1', pads=[1, 1, 1, 1]),
        helper.make_node('BatchNormalization', ['c1', 'g0', 'be0', 'm0', 'v0'], ['n1'], name='bn1',
                         epsilon=1e-3),
        helper.make_node('Relu', ['n1'], ['r1'], name='relu1'),
        helper.make_node('MaxPool', ['r1'], ['p1'], name='pool1', kernel_shape=[3, 3],
                         strides=[2, 2]),
        helper.make_node('Conv', ['p1', 'W2'], ['c2'], name='conv2'),
        helper.make_node('BatchNormalization', ['c2', 'g1', 'be1', 'm1', 'v1'], ['n2'], name='bn2'),
        helper.make_node('Relu', ['n2'], ['r2'], name='relu2'),
        helper.make_node('GlobalAveragePool', ['r2'], ['gp'], name='gap'),
        helper.make_node('Flatten', ['gp'], ['fl'], name='flatten'),
        helper.make_node('Gemm', ['fl', 'W3', 'b3'], ['output'], name='fc', transB=1),
    ]
    model = _onnx_model('conv_bn_net', nodes, [2, 11, 11], [3], inits, opset, batch='batch')

    t = torch.from_numpy
    conv1 = nn.Conv2d(2, 5, 3, padding=1)
    conv2 = nn.Conv2d(5, 7, 1, bias=False)
    fc = nn.Linear(7, 3)
    bn1, bn2 = nn.BatchNorm2d(5, eps=1e-3), nn.BatchNorm2d(7, eps=1e-5)
    with torch.no_grad():
        conv1.weight.copy_(t(W1)); conv1.bias.copy_(t(b1))
        conv2.weight.copy_(t(W2))
        fc.weight.copy_(t(W3)); fc.bias.copy_(t(b3))
        for m, p in ((bn1, bn[0]), (bn2, bn[1])):
            m.weight.copy_(t(p['g'])); m.bias.copy_(t(p['b']))
            m.running_mean.copy_(t(p['m'])); m.running_var.copy_(t(p['v']))
    module = nn.Sequential(conv1, bn1, nn.ReLU(), nn.MaxPool2d(3, 2), conv2, bn2, nn.ReLU(),
                           nn.AdaptiveAvgPool2d(1), nn.Flatten(1), fc)
    return model, module.eval()


# --------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------

def _broadcast_model(opset=13):
    """Element-wise arithmetic by constants of every broadcast shape (pass layers): (1,1,H,W),
    (W,), a scalar subtracted from (c - x), (C,1,W), (1,C,H,1), a scalar factor; the same
    after a Conv+Relu (not foldable into it); then Flatten and Gemm."""
    rng = np.random.default_rng(405)
    C, H, W = 2, 5, 7
    W1, b1 = _rand(rng, 3, C, 3, 3), _rand(rng, 3, scale=0.2)
    W2, b2 = _rand(rng, 4, 3 * H * W), _rand(rng, 4, scale=0.2)
    k = {
        'hw': _rand(rng, 1, 1, H, W, scale=0.5),
        'w': (1 + 0.5 * rng.random(W)).astype(np.float32),
        'c0': np.array(0.3, np.float32),
        'cw': (0.5 + rng.random((C, 1, W))).astype(np.float32),
        'ch': _rand(rng, 1, C, H, 1, scale=0.5),
        'two': np.array([2.0], np.float32),
        'after': (0.5 + rng.random((1, 3, H, 1))).astype(np.float32),
    }
    nodes = [
        helper.make_node('Sub', ['input', 'hw'], ['a0'], name='sub_hw'),
        helper.make_node('Mul', ['a0', 'w'], ['a1'], name='mul_w'),
        helper.make_node('Sub', ['c0', 'a1'], ['a2'], name='scalar_minus_x'),
        helper.make_node('Div', ['a2', 'cw'], ['a3'], name='div_cw'),
        helper.make_node('Add', ['a3', 'ch'], ['a4'], name='add_ch'),
        helper.make_node('Mul', ['two', 'a4'], ['a5'], name='scalar_times_x'),
        helper.make_node('Conv', ['a5', 'W1', 'b1'], ['c1'], name='conv1', pads=[1, 1, 1, 1]),
        helper.make_node('Relu', ['c1'], ['r1'], name='relu1'),
        helper.make_node('Mul', ['r1', 'after'], ['m1'], name='mul_after_relu'),
        helper.make_node('Flatten', ['m1'], ['f1'], name='flat'),
        helper.make_node('Gemm', ['f1', 'W2', 'b2'], ['output'], name='fc', transB=1),
    ]
    model = _onnx_model('broadcast_net', nodes, [C, H, W], [4],
                        [_init('W1', W1), _init('b1', b1), _init('W2', W2), _init('b2', b2)] +
                        [_init(name, v) for name, v in k.items()], opset)

    t = torch.from_numpy

    class Equivalent(nn.Module):
        def __init__(self):
            super().__init__()
            for name, v in k.items():
                self.register_buffer('k_' + name, t(v))
            self.conv1 = PadConv2d(t(W1), t(b1), pads=(1, 1, 1, 1))
            self.fc = Dense(t(W2), t(b2))

        def forward(self, x):
            # torch.sub(c, x) rather than c - x: fx traces the reflected operator as a
            # method, which the oracle's graph reader does not take.
            x = torch.mul(torch.sub(x, self.k_hw), self.k_w)
            x = torch.sub(self.k_c0, x)
            x = torch.add(torch.div(x, self.k_cw), self.k_ch)
            x = torch.mul(self.k_two, x)
            x = torch.mul(torch.relu(self.conv1(x)), self.k_after)
            return self.fc(torch.flatten(x, 1))

    return model, Equivalent().eval()


class Case:
    """A test model.  ``shape`` is the per-sample input shape."""

    def __init__(self, name, shape, opsets, make_torch=None, make_onnx=None, dynamic=True,
                 keep_inits_opsets=(), has_softmax=False, has_bias=True, tie_data=False):
        self.name = name
        self.shape = tuple(shape)
        self.opsets = list(opsets)
        self._make_torch = make_torch
        self._make_onnx = make_onnx
        self.dynamic = dynamic
        self.keep_inits_opsets = tuple(keep_inits_opsets)
        self.has_softmax = has_softmax
        self.has_bias = has_bias
        self.tie_data = tie_data
        self._module = None
        self._onnx = None

    @property
    def image(self):
        return len(self.shape) == 3

    @property
    def module(self):
        if self._module is None:
            if self._make_torch is not None:
                self._module = self._make_torch().eval()
            else:
                self._onnx, self._module = self._make_onnx()
        return self._module

    def export(self, directory, opset=None, n=5):
        """Write the ONNX file for ``opset`` (default: the first listed) and return its path."""
        opset = opset or self.opsets[0]
        path = os.path.join(directory, '%s_op%d.onnx' % (self.name, opset))
        if os.path.exists(path):
            return path
        if self._make_onnx is not None:
            model, _ = self._make_onnx(opset)
            onnx.save(model, path)
            return path
        module = self.module
        dummy = torch.zeros((n,) + self.shape)
        kw = {}
        if self.dynamic:
            kw['dynamic_axes'] = {'input': {0: 'batch'}, 'output': {0: 'batch'}}
        if opset in self.keep_inits_opsets:
            kw['keep_initializers_as_inputs'] = True
        f = io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(module, dummy, f, opset_version=opset, input_names=['input'],
                              output_names=['output'], do_constant_folding=True,
                              training=torch.onnx.TrainingMode.PRESERVE, **kw)
        module.eval()
        with open(path, 'wb') as fh:
            fh.write(f.getvalue())
        return path

    def scores(self, x):
        """Scores before any final softmax, float32 torch forward."""
        m = self.module
        with torch.no_grad():
            xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
            if self.has_softmax:
                # run everything except the final Softmax module
                y = _forward_without_softmax(m, xt)
            else:
                y = m(xt)
        return y.numpy()

    def data(self, n=5, seed=0):
        """Mixed-sign float32 input data (tie-rich: multiples of 0.5, for tie_data cases)."""
        rng = np.random.default_rng(1000 + seed)
        x = rng.standard_normal((n,) + self.shape).astype(np.float32)
        x += rng.uniform(-0.3, 0.3, size=(1,) + self.shape).astype(np.float32)
        if self.tie_data:
            x = (np.round(x * 2) / 2).astype(np.float32)
        return x


def _forward_without_softmax(m, x):
    sm = m.sm
    m.sm = nn.Identity()
    try:
        return m(x)
    finally:
        m.sm = sm


def _seeded(cls, seed, warm_shape=None, **kw):
    def make():
        torch.manual_seed(seed)
        m = cls(**kw)
        if warm_shape is not None:
            _warm_bn(m, warm_shape, seed)
        _randomise_bn(m, seed) if warm_shape is None else None
        return m.eval()
    return make


CASES = [
    Case('mlp', (12,), [13, 9, 17], _seeded(MLP, 1)),
    Case('mlp_bn', (12,), [13, 11], _seeded(MLPBN, 2, warm_shape=(12,)), has_softmax=True),
    Case('cnn_a', (3, 12, 12), [13, 9, 11, 17], _seeded(CNNA, 3, warm_shape=(3, 12, 12)),
         keep_inits_opsets=(9,)),
    Case('cnn_b', (3, 14, 14), [13, 11, 17], _seeded(CNNB, 4), has_softmax=True),
    Case('resnet', (3, 10, 10), [13, 11, 17], _seeded(ResNet, 5, warm_shape=(3, 10, 10))),
    Case('concat', (3, 8, 8), [13, 11], _seeded(ConcatNet, 6)),
    Case('single_out', (3, 6, 6), [13], _seeded(SingleOut, 7)),
    Case('cnn_nobias', (3, 8, 8), [13], _seeded(CNNNoBias, 8), has_bias=False),
    Case('mlp_nobias', (12,), [13], _seeded(MLP, 9, bias=False), has_bias=False),
    Case('pool_first', (3, 8, 8), [13], _seeded(PoolFirst, 10), tie_data=True),
    Case('cnn_ceil', (3, 9, 9), [13, 10], _seeded(CNNCeil, 11)),
    Case('onnx_bias_add', (2, 6, 6), [13], make_onnx=_bias_add_model),
    Case('onnx_broadcast', (2, 5, 7), [13], make_onnx=_broadcast_model),
    Case('onnx_gemm', (10,), [13], make_onnx=_gemm_model),
    Case('onnx_conv', (3, 9, 9), [13], make_onnx=_conv_model),
    Case('onnx_conv_bn', (2, 11, 11), [13], make_onnx=_conv_bn_model),
]
BY_NAME = {c.name: c for c in CASES}


def get(name):
    return BY_NAME[name]
