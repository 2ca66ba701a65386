"""Reference (oracle) implementation of the LRP rules of docs lrp-rules.md.

Written for clarity, not speed.  Everything is computed in float64 from the exact
float32 parameters of a PyTorch model.

Pipeline
--------
1. ``build_graph(module)`` traces a ``torch.nn.Module`` with torch.fx and turns it into a
   small list of ``Node`` records (our own graph description).  BatchNorm directly after a
   Conv/Linear (whose output feeds nothing else) is folded into it; every other BatchNorm
   is kept as an element-wise "pass" layer.  A Softmax producing the model output is
   dropped (relevance starts at the logits).
2. ``Oracle.forward(x)`` runs the graph and stores every activation.
3. ``Oracle.relevance(x, ...)`` propagates relevance backwards, node by node, with the
   rule the composite / preset / overrides assign to each linear layer.

Rule implementations follow lrp-rules.md literally: every transposed linear map W^T s is
the gradient of the (bias-free) forward map with respect to its input, obtained with
torch.autograd.grad and ``grad_outputs=s``.
"""

import operator

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

DTYPE = torch.float64

# --------------------------------------------------------------------------------------
# Custom leaf modules for constructs that plain torch.nn does not express but ONNX does
# (used by the torch equivalents of the hand-built ONNX models in models.py).
# --------------------------------------------------------------------------------------


class PadConv2d(nn.Module):
    """Conv2d with explicit, possibly asymmetric zero padding (top, left, bottom, right)."""

    def __init__(self, weight, bias, pads=(0, 0, 0, 0), stride=(1, 1), dilation=(1, 1), groups=1):
        super().__init__()
        self.weight = nn.Parameter(torch.as_tensor(weight).clone())
        self.bias = None if bias is None else nn.Parameter(torch.as_tensor(bias).clone())
        self.pads = tuple(int(p) for p in pads)
        self.stride = tuple(stride)
        self.dilation = tuple(dilation)
        self.groups = int(groups)

    def forward(self, x):
        t, l, b, r = self.pads
        return F.conv2d(F.pad(x, (l, r, t, b)), self.weight, self.bias, self.stride, 0,
                        self.dilation, self.groups)


class Dense(nn.Module):
    """y = x W^T + b with explicit weight (out, in) and optional bias (Gemm / MatMul+Add)."""

    def __init__(self, weight, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.as_tensor(weight).clone())
        self.bias = None if bias is None else nn.Parameter(torch.as_tensor(bias).clone())

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class _Tracer(torch.fx.Tracer):
    def is_leaf_module(self, m, qualname):
        if isinstance(m, (PadConv2d, Dense)):
            return True
        return super().is_leaf_module(m, qualname)


# --------------------------------------------------------------------------------------
# Graph description
# --------------------------------------------------------------------------------------

class Node:
    """One node of the oracle graph.

    kind is one of: input, const, linear, pass, maxpool, avgpool, gap, add, concat,
    reshape, size (non-tensor helper), softmax.
    ``inputs`` are names of other nodes (or Python constants for non-tensor args).
    """

    def __init__(self, name, kind, inputs, **attrs):
        self.name = name
        self.kind = kind
        self.inputs = list(inputs)
        self.attrs = attrs
        self.linear_index = None   # index among linear layers (graph order)
        self.first = False          # "first layer" flag for composites

    def __repr__(self):
        extra = ''
        if self.kind == 'linear':
            extra = ' #%d %s%s' % (self.linear_index, self.attrs['ltype'],
                                   ' first' if self.first else '')
        return '<%s %s %s%s>' % (self.kind, self.name, self.inputs, extra)


def _t(v):
    return None if v is None else v.detach().to(DTYPE).clone()


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class Graph:
    def __init__(self, nodes, output):
        self.nodes = nodes            # topologically ordered list
        self.by_name = {n.name: n for n in nodes}
        self.output = output          # name of the node holding the logits
        self.linears = [n for n in nodes if n.kind == 'linear']
        for i, n in enumerate(self.linears):
            n.linear_index = i
        self._mark_first()

    def _mark_first(self):
        # A linear layer is "first" when it can be reached from the model input without
        # crossing another linear layer.
        reach = set()
        for n in self.nodes:
            if n.kind == 'input':
                reach.add(n.name)
                continue
            srcs = [i for i in n.inputs if isinstance(i, str) and i in self.by_name]
            if any(s in reach for s in srcs):
                if n.kind == 'linear':
                    n.first = True     # not propagated further
                else:
                    reach.add(n.name)

    def __repr__(self):
        return '\n'.join(repr(n) for n in self.nodes)


def _linear_from_module(m):
    if isinstance(m, nn.Conv2d):
        ph, pw = _pair(m.padding)
        return dict(ltype='conv', weight=_t(m.weight), bias=_t(m.bias), pads=(ph, pw, ph, pw),
                    stride=_pair(m.stride), dilation=_pair(m.dilation), groups=m.groups)
    if isinstance(m, PadConv2d):
        return dict(ltype='conv', weight=_t(m.weight), bias=_t(m.bias), pads=m.pads,
                    stride=m.stride, dilation=m.dilation, groups=m.groups)
    if isinstance(m, (nn.Linear, Dense)):
        return dict(ltype='dense', weight=_t(m.weight), bias=_t(m.bias))
    return None


def _fold_bn(lin, bn):
    """W' = W*g/sqrt(var+e), b' = (b-mean)*g/sqrt(var+e) + beta."""
    g = _t(bn.weight) if bn.weight is not None else torch.ones(bn.num_features, dtype=DTYPE)
    beta = _t(bn.bias) if bn.bias is not None else torch.zeros(bn.num_features, dtype=DTYPE)
    mean = _t(bn.running_mean)
    var = _t(bn.running_var)
    scale = g / torch.sqrt(var + bn.eps)
    W = lin['weight']
    b = lin['bias'] if lin['bias'] is not None else torch.zeros(W.shape[0], dtype=DTYPE)
    shape = [-1] + [1] * (W.dim() - 1)
    lin = dict(lin)
    lin['weight'] = W * scale.view(shape)
    lin['bias'] = (b - mean) * scale + beta
    return lin


_PASS_MODULES = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Dropout, nn.Identity)


def build_graph(module):
    """Trace ``module`` (eval mode) into a Graph for the oracle."""
    module = module.eval()
    gm = torch.fx.GraphModule(module, _Tracer().trace(module))
    mods = dict(gm.named_modules())
    fx_nodes = list(gm.graph.nodes)
    users = {n.name: list(n.users) for n in fx_nodes}
    nodes = []
    alias = {}                 # fx name -> our node name (for folded BN)
    out_name = None

    def ref(a):
        if isinstance(a, torch.fx.Node):
            return alias.get(a.name, a.name)
        if isinstance(a, (list, tuple)):
            return type(a)(ref(b) for b in a)
        return a

    for n in fx_nodes:
        args = [ref(a) for a in n.args]
        if n.op == 'placeholder':
            nodes.append(Node(n.name, 'input', []))
        elif n.op == 'get_attr':
            obj = gm
            for part in n.target.split('.'):
                obj = getattr(obj, part)
            nodes.append(Node(n.name, 'const', [], value=_t(obj)))
        elif n.op == 'call_module':
            m = mods[n.target]
            lin = _linear_from_module(m)
            if lin is not None:
                nodes.append(Node(n.name, 'linear', args[:1], **lin))
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                src = n.args[0]
                prev = nodes[-1] if nodes else None
                foldable = (isinstance(src, torch.fx.Node) and prev is not None
                            and prev.name == ref(src) and prev.kind == 'linear'
                            and len(users[src.name]) == 1)
                if foldable:
                    folded = _fold_bn(prev.attrs, m)
                    prev.attrs.update(folded)
                    alias[n.name] = prev.name
                else:
                    nodes.append(Node(n.name, 'pass', args[:1], fn=_bn_fn(m)))
            elif isinstance(m, _PASS_MODULES):
                nodes.append(Node(n.name, 'pass', args[:1], fn=_module_fn(m)))
            elif isinstance(m, nn.MaxPool2d):
                nodes.append(Node(n.name, 'maxpool', args[:1], kernel=_pair(m.kernel_size),
                                  stride=_pair(m.stride if m.stride is not None else m.kernel_size),
                                  padding=_pair(m.padding), dilation=_pair(m.dilation),
                                  ceil_mode=m.ceil_mode))
            elif isinstance(m, nn.AvgPool2d):
                nodes.append(Node(n.name, 'avgpool', args[:1], kernel=_pair(m.kernel_size),
                                  stride=_pair(m.stride if m.stride is not None else m.kernel_size),
                                  padding=_pair(m.padding), ceil_mode=m.ceil_mode,
                                  count_include_pad=m.count_include_pad))
            elif isinstance(m, nn.AdaptiveAvgPool2d):
                assert _pair(m.output_size) == (1, 1), 'only global average pooling'
                nodes.append(Node(n.name, 'gap', args[:1]))
            elif isinstance(m, nn.Flatten):
                nodes.append(Node(n.name, 'reshape', args[:1],
                                  fn=lambda x, s=m.start_dim, e=m.end_dim: torch.flatten(x, s, e)))
            elif isinstance(m, nn.Softmax):
                nodes.append(Node(n.name, 'softmax', args[:1], dim=m.dim))
            else:
                raise NotImplementedError('module %r' % (m,))
        elif n.op in ('call_function', 'call_method'):
            nodes.append(_function_node(n, args, nodes))
        elif n.op == 'output':
            out_name = ref(n.args[0])
        else:
            raise NotImplementedError(n.op)

    # A Softmax producing the output is removed: relevance starts at the logits.
    byname = {x.name: x for x in nodes}
    if byname[out_name].kind == 'softmax':
        out_name = byname[out_name].inputs[0]
    return Graph(nodes, out_name)


def _module_fn(m):
    if isinstance(m, nn.ReLU):
        return torch.relu
    if isinstance(m, nn.LeakyReLU):
        return lambda x, a=m.negative_slope: F.leaky_relu(x, a)
    if isinstance(m, nn.Tanh):
        return torch.tanh
    if isinstance(m, nn.Sigmoid):
        return torch.sigmoid
    return lambda x: x          # Dropout (eval), Identity


def _bn_fn(m):
    mean, var = _t(m.running_mean), _t(m.running_var)
    g = _t(m.weight) if m.weight is not None else torch.ones_like(mean)
    b = _t(m.bias) if m.bias is not None else torch.zeros_like(mean)
    eps = m.eps

    def fn(x):
        shape = [1, -1] + [1] * (x.dim() - 2)
        return (x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps) * g.view(shape) + b.view(shape)
    return fn


_ELEMENTWISE_FN = {
    torch.relu: torch.relu, F.relu: torch.relu, torch.tanh: torch.tanh,
    torch.sigmoid: torch.sigmoid, F.leaky_relu: F.leaky_relu,
}
_ARITH = {operator.add: operator.add, torch.add: operator.add, operator.sub: operator.sub,
          torch.sub: operator.sub, operator.mul: operator.mul, torch.mul: operator.mul,
          operator.truediv: operator.truediv, torch.div: operator.truediv}


def _function_node(n, args, nodes):
    t = n.target
    # Anything derived from the model input is an "activation"; everything else constant.
    act = _activation_names(nodes)
    if n.op == 'call_method':
        if t == 'size':
            return Node(n.name, 'size', args[:1], dim=args[1] if len(args) > 1 else None)
        if t in ('view', 'reshape'):
            shape_args = args[1:]
            return Node(n.name, 'reshape', args[:1] + shape_args, method=t)
        if t == 'flatten':
            sd = args[1] if len(args) > 1 else n.kwargs.get('start_dim', 0)
            return Node(n.name, 'reshape', args[:1], fn=lambda x, s=sd: torch.flatten(x, s))
        if t in ('relu', 'tanh', 'sigmoid'):
            return Node(n.name, 'pass', args[:1], fn=getattr(torch, t))
        if t == 'softmax':
            return Node(n.name, 'softmax', args[:1], dim=args[1] if len(args) > 1 else n.kwargs['dim'])
        raise NotImplementedError('method %s' % t)
    if t in _ELEMENTWISE_FN:
        fn = _ELEMENTWISE_FN[t]
        if t is F.leaky_relu:
            slope = args[1] if len(args) > 1 else n.kwargs.get('negative_slope', 0.01)
            return Node(n.name, 'pass', args[:1], fn=lambda x: F.leaky_relu(x, slope))
        return Node(n.name, 'pass', args[:1], fn=fn)
    if t is torch.flatten:
        sd = args[1] if len(args) > 1 else n.kwargs.get('start_dim', 0)
        return Node(n.name, 'reshape', args[:1], fn=lambda x, s=sd: torch.flatten(x, s))
    if t is torch.cat:
        tensors = list(args[0])
        dim = args[1] if len(args) > 1 else n.kwargs.get('dim', 0)
        return Node(n.name, 'concat', tensors, dim=dim)
    if t is torch.softmax or t is F.softmax:
        return Node(n.name, 'softmax', args[:1], dim=args[1] if len(args) > 1 else n.kwargs['dim'])
    if t in _ARITH:
        a, b = args[0], args[1]
        a_act = isinstance(a, str) and a in act
        b_act = isinstance(b, str) and b in act
        op = _ARITH[t]
        if a_act and b_act:
            assert op is operator.add, 'only residual Add of two activations is supported'
            return Node(n.name, 'add', [a, b])
        # element-wise op with a constant: pass
        return Node(n.name, 'pass', [a if a_act else b],
                    const_op=(op, a if not a_act else None, b if not b_act else None))
    raise NotImplementedError('function %r' % (t,))


def _activation_names(nodes):
    act = set()
    for x in nodes:
        if x.kind == 'input' or any(isinstance(i, str) and i in act for i in x.inputs):
            if x.kind not in ('size',):
                act.add(x.name)
    return act


# --------------------------------------------------------------------------------------
# Linear maps
# --------------------------------------------------------------------------------------

def lin_forward(L, x, W, b):
    """The layer's forward map with weights W and bias b (b may be None)."""
    if L['ltype'] == 'dense':
        return F.linear(x, W, b)
    t, l, bt, r = L['pads']
    return F.conv2d(F.pad(x, (l, r, t, bt)), W, b, L['stride'], 0, L['dilation'], L['groups'])


def lin_transpose(L, W, s, in_shape):
    """W^T s: gradient of the bias-free forward map w.r.t. its input, with grad_outputs=s."""
    x = torch.zeros(in_shape, dtype=DTYPE, requires_grad=True)
    y = lin_forward(L, x, W, None)
    (g,) = torch.autograd.grad(y, x, grad_outputs=s)
    return g


def sgn0(v):
    """sgn with sgn(0) = +1."""
    return torch.where(v >= 0, torch.ones_like(v), -torch.ones_like(v))


def stab(v, eps):
    return v + eps * sgn0(v)


def safe_div(num, den):
    """num / den with 0/0 -> 0 (and any x/0 -> 0; only reachable with eps = 0)."""
    out = torch.zeros_like(num)
    nz = den != 0
    out[nz] = num[nz] / den[nz]
    return out


def pos(v):
    return v.clamp(min=0)


def neg(v):
    return v.clamp(max=0)


def rule_epsilon(L, x, R, eps):
    W, b = L['weight'], L['bias']
    z = lin_forward(L, x, W, b)
    s = safe_div(R, stab(z, eps))
    return x * lin_transpose(L, W, s, x.shape)


def rule_zplus(L, x, R, eps):
    W, b = L['weight'], L['bias']
    Wp, Wn = pos(W), neg(W)
    xp, xn = pos(x), neg(x)
    bp = pos(b) if b is not None else None
    u = lin_forward(L, xp, Wp, bp) + lin_forward(L, xn, Wn, None)
    s = safe_div(R, stab(u, eps))
    return xp * lin_transpose(L, Wp, s, x.shape) + xn * lin_transpose(L, Wn, s, x.shape)


def rule_alpha_beta(L, x, R, eps, alpha, beta):
    W, b = L['weight'], L['bias']
    Wp, Wn = pos(W), neg(W)
    xp, xn = pos(x), neg(x)
    bp = pos(b) if b is not None else None
    bn = neg(b) if b is not None else None
    u = lin_forward(L, xp, Wp, bp) + lin_forward(L, xn, Wn, None)
    v = lin_forward(L, xp, Wn, bn) + lin_forward(L, xn, Wp, None)
    su = safe_div(R, stab(u, eps))
    sv = safe_div(R, stab(v, eps))
    T = lambda M, s: lin_transpose(L, M, s, x.shape)
    return (alpha * (xp * T(Wp, su) + xn * T(Wn, su))
            - beta * (xp * T(Wn, sv) + xn * T(Wp, sv)))


def rule_gamma(L, x, R, eps, gamma):
    W, b = L['weight'], L['bias']
    if b is None:
        b = torch.zeros(W.shape[0], dtype=DTYPE)
    P = W + gamma * pos(W)
    N = W + gamma * neg(W)
    bP = b + gamma * pos(b)
    bN = b + gamma * neg(b)
    xp, xn = pos(x), neg(x)
    z = lin_forward(L, x, W, b)
    u = lin_forward(L, xp, P, None) + lin_forward(L, xn, N, None) + _bias_broadcast(L, bP, z)
    v = lin_forward(L, xp, N, None) + lin_forward(L, xn, P, None) + _bias_broadcast(L, bN, z)
    su = safe_div(R * (z > 0).to(DTYPE), stab(u, eps))
    sv = safe_div(R * (z < 0).to(DTYPE), stab(v, eps))
    T = lambda M, s: lin_transpose(L, M, s, x.shape)
    return xp * T(P, su) + xn * T(N, su) + xp * T(N, sv) + xn * T(P, sv)


def _bias_broadcast(L, b, like):
    if L['ltype'] == 'dense':
        return b.view(1, -1).expand_as(like)
    return b.view(1, -1, 1, 1).expand_as(like)


def rule_zbox(L, x, R, eps, low, high):
    """low/high: scalars, per-channel vectors or tensors shaped like x (already in the
    layer's input space)."""
    W = L['weight']
    Wp, Wn = pos(W), neg(W)
    l = _bounds_like(low, x)
    h = _bounds_like(high, x)
    z = lin_forward(L, x, W, None) - lin_forward(L, l, Wp, None) - lin_forward(L, h, Wn, None)
    s = safe_div(R, stab(z, eps))
    T = lambda M: lin_transpose(L, M, s, x.shape)
    return x * T(W) - l * T(Wp) - h * T(Wn)


def _bounds_like(v, x):
    v = torch.as_tensor(v, dtype=DTYPE)
    if v.shape == x.shape:
        return v.clone()
    if v.dim() == 0:
        return torch.full_like(x, float(v))
    if v.numel() == 1:
        return torch.full_like(x, float(v.reshape(())))
    if x.dim() == 4:      # per input channel
        return v.view(1, -1, 1, 1).expand_as(x).clone()
    return v.view(1, -1).expand_as(x).clone()


def rule_flat(L, x, R, eps):
    W1 = torch.ones_like(L['weight'])
    ones = torch.ones_like(x)
    z = lin_forward(L, ones, W1, None)
    s = safe_div(R, stab(z, eps))
    return lin_transpose(L, W1, s, x.shape)


def rule_wsquare(L, x, R, eps):
    W, b = L['weight'], L['bias']
    W2 = W * W
    b2 = b * b if b is not None else None
    z = lin_forward(L, torch.ones_like(x), W2, b2)
    s = safe_div(R, stab(z, eps))
    return lin_transpose(L, W2, s, x.shape)


# --------------------------------------------------------------------------------------
# Composites
# --------------------------------------------------------------------------------------

def composite_rule(name, L):
    """Rule of linear layer L (a Node) under composite / preset ``name`` (lrp-rules.md)."""
    first, conv = L.first, L.attrs['ltype'] == 'conv'
    if name == 'epsilon':
        return 'epsilon'
    if name == 'epsilon-plus':
        if first:
            return 'zplus' if conv else 'epsilon'
        return 'zplus' if conv else 'epsilon'
    if name == 'epsilon-plus-flat':
        if first:
            return 'flat'
        return 'zplus' if conv else 'epsilon'
    if name == 'epsilon-gamma-box':
        if first:
            return 'zbox' if conv else 'epsilon'
        return 'gamma' if conv else 'epsilon'
    if name == 'epsilon-alpha2-beta1':
        if first:
            return 'alpha2-beta1' if conv else 'epsilon'
        return 'alpha2-beta1' if conv else 'epsilon'
    if name == 'epsilon-alpha2-beta1-flat':
        if first:
            return 'flat'
        return 'alpha2-beta1' if conv else 'epsilon'
    if name in PRESETS:
        return name
    raise ValueError('unknown composite %r' % name)


COMPOSITES = ['epsilon', 'epsilon-plus', 'epsilon-plus-flat', 'epsilon-gamma-box',
              'epsilon-alpha2-beta1', 'epsilon-alpha2-beta1-flat']
PRESETS = ['lrp0', 'epsilon', 'zplus', 'alpha1-beta0', 'alpha2-beta1', 'gamma', 'wsquare', 'flat']
ALL_COMPOSITES = COMPOSITES + [p for p in PRESETS if p not in COMPOSITES]
RULES = ['epsilon', 'lrp0', 'zplus', 'alpha-beta', 'alpha1-beta0', 'alpha2-beta1', 'gamma',
         'zbox', 'flat', 'wsquare']


# --------------------------------------------------------------------------------------
# The oracle
# --------------------------------------------------------------------------------------

class Oracle:
    def __init__(self, module_or_graph):
        self.graph = module_or_graph if isinstance(module_or_graph, Graph) else build_graph(module_or_graph)

    # ---------------- forward ----------------
    def forward(self, x):
        """Run the graph; returns dict name -> value (tensors in float64)."""
        acts = {}
        for n in self.graph.nodes:
            acts[n.name] = self._eval_node(n, acts, x)
        return acts

    def _eval_node(self, n, acts, x=None):
        ins = [acts[i] if isinstance(i, str) and i in acts else i for i in n.inputs]
        k = n.kind
        if k == 'input':
            return torch.as_tensor(x).to(DTYPE)
        if k == 'const':
            return n.attrs['value']
        if k == 'linear':
            return lin_forward(n.attrs, ins[0], n.attrs['weight'], n.attrs['bias'])
        if k == 'pass':
            if 'const_op' in n.attrs:
                op, a, b = n.attrs['const_op']
                a = ins[0] if a is None else (acts[a] if isinstance(a, str) else a)
                b = ins[0] if b is None else (acts[b] if isinstance(b, str) else b)
                return op(a, b)
            return n.attrs['fn'](ins[0])
        if k == 'maxpool':
            return F.max_pool2d(ins[0], n.attrs['kernel'], n.attrs['stride'], n.attrs['padding'],
                                n.attrs['dilation'], n.attrs['ceil_mode'])
        if k == 'avgpool':
            return self._avgpool(n, ins[0])
        if k == 'gap':
            return ins[0].mean(dim=(2, 3), keepdim=True)
        if k == 'add':
            return ins[0] + ins[1]
        if k == 'concat':
            return torch.cat(ins, dim=n.attrs['dim'])
        if k == 'size':
            return ins[0].size() if n.attrs['dim'] is None else ins[0].size(n.attrs['dim'])
        if k == 'reshape':
            if 'fn' in n.attrs:
                return n.attrs['fn'](ins[0])
            return ins[0].reshape(*ins[1:])
        if k == 'softmax':
            return torch.softmax(ins[0], dim=n.attrs['dim'])
        raise NotImplementedError(k)

    def map_bounds(self, L, low, high, x):
        """zbox bounds are given on the model input (scalar or per channel).  Map them to
        the input of layer L through the single-input layers in between (e.g. in-graph
        normalisation (x - mean) / std, or a max pool): apply those layers to the broadcast
        bound tensors and take the element-wise min / max of the two images."""
        x = torch.as_tensor(x).to(DTYPE)
        l = _bounds_like(low, x)
        h = _bounds_like(high, x)
        chain = []
        name = L.inputs[0]
        g = self.graph
        while g.by_name[name].kind != 'input':
            n = g.by_name[name]
            if n.kind not in ('pass', 'maxpool', 'avgpool', 'reshape'):
                raise ValueError('zbox on %s: layer %s (%s) lies between it and the model input'
                                 % (L.name, n.name, n.kind))
            chain.append(n)
            srcs = [i for i in n.inputs if isinstance(i, str) and g.by_name[i].kind not in ('const', 'size')]
            name = srcs[0]
        inp = name
        consts = {n.name: self._eval_node(n, {}) for n in g.nodes if n.kind == 'const'}
        fl, fh = dict(consts), dict(consts)
        fl[inp], fh[inp] = l, h
        for n in reversed(chain):
            fl[n.name] = self._eval_node(n, fl)
            fh[n.name] = self._eval_node(n, fh)
        a, b = fl[L.inputs[0]], fh[L.inputs[0]]
        return torch.minimum(a, b), torch.maximum(a, b)

    @staticmethod
    def _avgpool(n, x):
        return F.avg_pool2d(x, n.attrs['kernel'], n.attrs['stride'], n.attrs['padding'],
                            n.attrs['ceil_mode'], n.attrs['count_include_pad'])

    def logits(self, x):
        return self.forward(x)[self.graph.output]

    # ---------------- rule assignment ----------------
    def rule_for(self, L, composite, overrides):
        if overrides:
            if L.linear_index in overrides:
                return overrides[L.linear_index]
            if L.name in overrides:
                return overrides[L.name]
        return composite_rule(composite, L)

    def rule_table(self, composite='epsilon-plus-flat', overrides=None):
        return [(L.name, self.rule_for(L, composite, overrides)) for L in self.graph.linears]

    # ---------------- relevance ----------------
    def relevance(self, x, composite='epsilon-plus-flat', init='logit', target=None,
                  overrides=None, epsilon=1e-6, stab_eps=1e-6, gamma=0.25, alpha=2.0, beta=1.0,
                  low=None, high=None, maxpool='wta', return_all=False):
        """Relevance at the model input.

        overrides: dict {linear index (int) or fx node name: rule name}.
        epsilon: eps of the epsilon rule; stab_eps: eps of every other stabiliser
        (zplus, alpha-beta, gamma, zbox, flat, wsquare and the norm rule).
        low/high: zbox bounds on the model input (scalar or per input channel).  None ->
        per-channel min/max over the whole x (for (N,F): one scalar over all values).  They
        are mapped to the zbox layer's input through the element-wise layers in between
        (see map_bounds).
        Returns (R, info) with info = dict(logits, target, R_out, rules).
        """
        x = torch.as_tensor(x).to(DTYPE)
        acts = self.forward(x)
        g = self.graph
        z = acts[g.output]
        assert z.dim() == 2
        N, K = z.shape
        if K == 1:
            tgt = torch.zeros(N, dtype=torch.long)
            R_out = z.clone()          # single output: starts from its value, sign kept
        else:
            if target is None:
                tgt = z.argmax(dim=1)
            else:
                tgt = torch.full((N,), int(target), dtype=torch.long)
            onehot = F.one_hot(tgt, K).to(DTYPE)
            if init == 'one':
                R_out = onehot
            elif init == 'logit':
                R_out = onehot * z
            elif init == 'prob':
                R_out = onehot * torch.softmax(z, dim=1)
            else:
                raise ValueError(init)

        if low is None or high is None:
            dlow, dhigh = default_bounds(x)
            low = dlow if low is None else low
            high = dhigh if high is None else high

        rel = {g.output: R_out}
        rules = {}
        for n in reversed(g.nodes):
            if n.name not in rel:
                continue
            R = rel.pop(n.name)
            k = n.kind
            srcs = [i for i in n.inputs if isinstance(i, str) and i in g.by_name
                    and g.by_name[i].kind not in ('const', 'size')]
            if k == 'input':
                rel[n.name] = R      # keep
                break
            if k == 'linear':
                xin = acts[n.inputs[0]]
                rule = self.rule_for(n, composite, overrides)
                rules[n.name] = rule
                lo_, hi_ = (self.map_bounds(n, low, high, x) if rule == 'zbox' else (None, None))
                Rin = self._apply_rule(rule, n.attrs, xin, R, epsilon, stab_eps, gamma,
                                       alpha, beta, lo_, hi_)
                self._acc(rel, n.inputs[0], Rin)
            elif k == 'pass':
                self._acc(rel, srcs[0], R)
            elif k == 'reshape':
                self._acc(rel, srcs[0], R.reshape(acts[srcs[0]].shape))
            elif k == 'maxpool':
                xin = acts[srcs[0]]
                if maxpool == 'wta':
                    Rin = self._maxpool_wta(n, xin, R)
                else:
                    # proportional: treated as average pooling (same window) with norm rule
                    pn = Node(n.name, 'avgpool', [], kernel=n.attrs['kernel'], stride=n.attrs['stride'],
                              padding=n.attrs['padding'], ceil_mode=n.attrs['ceil_mode'],
                              count_include_pad=True)
                    Rin = self._norm(lambda t: self._avgpool(pn, t), xin, R, stab_eps)
                self._acc(rel, srcs[0], Rin)
            elif k == 'avgpool':
                xin = acts[srcs[0]]
                self._acc(rel, srcs[0], self._norm(lambda t: self._avgpool(n, t), xin, R, stab_eps))
            elif k == 'gap':
                xin = acts[srcs[0]]
                self._acc(rel, srcs[0], self._norm(lambda t: t.mean(dim=(2, 3), keepdim=True),
                                                   xin, R, stab_eps))
            elif k == 'add':
                a, b = n.inputs
                s = safe_div(R, stab(acts[a] + acts[b], stab_eps))
                self._acc(rel, a, acts[a] * s)
                self._acc(rel, b, acts[b] * s)
            elif k == 'concat':
                d = n.attrs['dim']
                off = 0
                for i in n.inputs:
                    w = acts[i].shape[d]
                    self._acc(rel, i, R.narrow(d, off, w))
                    off += w
            elif k == 'softmax':
                raise AssertionError('softmax inside the graph is not supported by the oracle')
            else:
                raise NotImplementedError(k)
        inp = [n for n in g.nodes if n.kind == 'input'][0]
        R_in = rel[inp.name]
        info = dict(logits=z, target=tgt, R_out=R_out, rules=rules, low=low, high=high)
        return R_in, info

    @staticmethod
    def _acc(rel, name, R):
        rel[name] = rel[name] + R if name in rel else R

    def _apply_rule(self, rule, L, x, R, epsilon, stab_eps, gamma, alpha, beta, low, high):
        if rule == 'epsilon':
            return rule_epsilon(L, x, R, epsilon)
        if rule == 'lrp0':
            return rule_epsilon(L, x, R, 0.0)
        if rule == 'zplus':
            return rule_zplus(L, x, R, stab_eps)
        if rule == 'alpha-beta':
            return rule_alpha_beta(L, x, R, stab_eps, alpha, beta)
        if rule == 'alpha1-beta0':
            return rule_alpha_beta(L, x, R, stab_eps, 1.0, 0.0)
        if rule == 'alpha2-beta1':
            return rule_alpha_beta(L, x, R, stab_eps, 2.0, 1.0)
        if rule == 'gamma':
            return rule_gamma(L, x, R, stab_eps, gamma)
        if rule == 'zbox':
            return rule_zbox(L, x, R, stab_eps, low, high)
        if rule == 'flat':
            return rule_flat(L, x, R, stab_eps)
        if rule == 'wsquare':
            return rule_wsquare(L, x, R, stab_eps)
        raise ValueError('unknown rule %r' % rule)

    @staticmethod
    def _norm(f, x, R, eps):
        """norm rule: s = R / stab(f(x)); R_in = x * J^T s."""
        xg = x.detach().clone().requires_grad_(True)
        y = f(xg)
        s = safe_div(R, stab(y.detach(), eps))
        (g,) = torch.autograd.grad(y, xg, grad_outputs=s)
        return x * g

    @staticmethod
    def _maxpool_wta(n, x, R):
        """Winner takes all; ties -> first in scan order (PyTorch indices); overlaps add."""
        a = n.attrs
        _, idx = F.max_pool2d(x, a['kernel'], a['stride'], a['padding'], a['dilation'],
                              a['ceil_mode'], return_indices=True)
        Nb, C, H, W = x.shape
        out = torch.zeros(Nb, C, H * W, dtype=DTYPE)
        out.scatter_add_(2, idx.reshape(Nb, C, -1), R.reshape(Nb, C, -1))
        return out.reshape(x.shape)


def default_bounds(x):
    """zbox default bounds: per-channel min/max over the whole array (N,C,H,W), or a
    single scalar min/max for (N,F)."""
    x = torch.as_tensor(x).to(DTYPE)
    if x.dim() == 4:
        return (x.amin(dim=(0, 2, 3)), x.amax(dim=(0, 2, 3)))
    return (x.min(), x.max())


def gradient_times_input(module, x, target):
    """(d z_t / d x) * x with torch autograd on the float64 copy of ``module``."""
    import copy
    m = copy.deepcopy(module).double().eval()
    xx = torch.as_tensor(x).to(DTYPE).requires_grad_(True)
    out = m(xx)
    sel = out[torch.arange(out.shape[0]), torch.as_tensor(target)]
    (g,) = torch.autograd.grad(sel.sum(), xx)
    return (g * xx).detach()


class precision:
    """Context manager switching the oracle's working dtype (used for conditioning checks:
    graphs must be built and evaluated under the same precision)."""

    def __init__(self, dtype):
        self.dtype = dtype

    def __enter__(self):
        global DTYPE
        self.old = DTYPE
        DTYPE = self.dtype
        return self

    def __exit__(self, *a):
        global DTYPE
        DTYPE = self.old
        return False
