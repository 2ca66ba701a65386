#!/usr/bin/python3
"""Write the seed corpus of fuzz_onnx: one tiny model per group of supported ONNX ops.

    /usr/bin/python3 tools/make_fuzz_seeds.py [--out tests/fuzz/corpus_onnx] [--geolrp build/geolrp]

Why: libFuzzer mutates what it is given. With three seeds that only had Conv, Gemm and
MaxPool, a 60 s run rarely reached the Pad, Slice or shape-folding code, and a string
attribute of length zero (protobuf-c's NULL data) was found by CI, not by us. Each seed
here uses every attribute of its ops at a non-default value, so the mutations start from
inputs that reach the loader's deeper branches.

Seeds are kept small (weights of a few values, spatial size 6) because libFuzzer's
default maximum input length follows the largest seed. Every seed must pass
onnx.checker (but the opset-18 one, newer than Debian's onnx) and, given --geolrp, load with `geolrp info` (exit 0): a seed the loader
refuses at once teaches the fuzzer little.

Uses Debian's /usr/bin/python3 (onnx, numpy).
"""

import argparse
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(0)
C, H, W = 2, 6, 6


def weight(name, *shape):
    return numpy_helper.from_array(RNG.standard_normal(shape).astype(np.float32), name)


def ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def model(name, nodes, inits, out_shape, opset=13, in_shape=(1, C, H, W), check=True):
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape[1:]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])],
        inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="geolrp-fuzz-seeds")
    if check:
        onnx.checker.check_model(m)
    return m


def conv_autopad():
    """Conv with SAME_UPPER / SAME_LOWER / VALID, strides, dilations, groups; Gemm transB."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], auto_pad="SAME_UPPER", strides=[2, 2],
          kernel_shape=[3, 3]),
        n("Relu", ["c1"], ["r1"]),
        n("Conv", ["r1", "w2"], ["c2"], auto_pad="SAME_LOWER", dilations=[2, 2],
          kernel_shape=[2, 2]),
        n("Conv", ["c2", "w3"], ["c3"], auto_pad="VALID", group=2, kernel_shape=[1, 1]),
        n("GlobalAveragePool", ["c3"], ["g"]),
        n("Flatten", ["g"], ["f"], axis=1),
        n("Gemm", ["f", "w4", "b4"], ["y"], transB=1, alpha=0.5, beta=2.0),
    ]
    inits = [weight("w1", 4, C, 3, 3), weight("b1", 4), weight("w2", 4, 4, 2, 2),
             weight("w3", 4, 2, 1, 1), weight("w4", 3, 4), weight("b4", 3)]
    return model("conv_autopad", nodes, inits, [3])


def pools_activations():
    """BatchNormalization, LeakyRelu, Sigmoid, Tanh, MaxPool and AveragePool with pads,
    ceil_mode, dilations and count_include_pad; MatMul + Add; final Softmax."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1"], ["c1"], pads=[1, 0, 1, 2], kernel_shape=[3, 3]),
        n("BatchNormalization", ["c1", "s", "bb", "mu", "var"], ["bn"], epsilon=1e-3),
        n("LeakyRelu", ["bn"], ["l"], alpha=0.2),
        n("MaxPool", ["l"], ["mp"], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1],
          ceil_mode=1),
        n("Sigmoid", ["mp"], ["sg"]),
        n("AveragePool", ["sg"], ["ap"], kernel_shape=[2, 2], pads=[1, 1, 1, 1],
          count_include_pad=1),
        n("Tanh", ["ap"], ["t"]),
        n("MaxPool", ["t"], ["mp2"], kernel_shape=[2, 2], dilations=[2, 2]),
        n("Flatten", ["mp2"], ["f"]),
        n("MatMul", ["f", "wm"], ["mm"]),
        n("Add", ["mm", "bm"], ["logits"]),
        n("Softmax", ["logits"], ["y"], axis=-1),
    ]
    inits = [weight("w1", 3, C, 3, 3), weight("s", 3), weight("bb", 3), weight("mu", 3),
             numpy_helper.from_array(np.array([0.5, 1.0, 2.0], np.float32), "var"),
             weight("wm", 12, 4), weight("bm", 4)]
    return model("pools_activations", nodes, inits, [4])


def pads_and_arithmetic():
    """Opset 18: Pad with pads, constant_value and axes as inputs, ReduceMean with axes as
    an input; element-wise Add/Sub/Mul/Div with per-channel constants, a residual Add,
    Concat on channels."""
    n = helper.make_node
    nodes = [
        n("Pad", ["x", "pads", "pv", "axes"], ["p"], mode="constant"),
        n("Conv", ["p", "w1"], ["c1"], kernel_shape=[3, 3]),
        n("Sub", ["c1", "mean"], ["s"]),
        n("Div", ["s", "std"], ["d"]),
        n("Mul", ["d", "gain"], ["m"]),
        n("Relu", ["m"], ["r"]),
        n("Add", ["r", "c1"], ["res"]),
        n("Concat", ["res", "r"], ["cat"], axis=1),
        n("ReduceMean", ["cat", "axes"], ["y"], keepdims=0),
    ]
    inits = [ints("pads", [1, 1, 1, 1]),
             numpy_helper.from_array(np.array(0.25, np.float32), "pv"),
             ints("axes", [2, 3]), weight("w1", 2, C, 3, 3),
             weight("mean", 2, 1, 1), weight("std", 2, 1, 1), weight("gain", 1, 2, 1, 1)]
    # Debian's onnx 1.12 knows opsets up to 17, so its checker rejects Pad's axes input.
    return model("pads_and_arithmetic", nodes, inits, [4], opset=18, check=False)


def reduce_attributes():
    """ReduceMean with axes as an attribute (before opset 18), keepdims=1, then Flatten."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[2, 2]),
        n("ReduceMean", ["c1"], ["rm"], axes=[-1, -2], keepdims=1),
        n("Flatten", ["rm"], ["y"]),
    ]
    return model("reduce_attributes", nodes, [weight("w1", 3, C, 2, 2), weight("b1", 3)], [3])


def pad_attributes():
    """Pad in its opset-2 form (pads and value as attributes), Dropout, Identity."""
    n = helper.make_node
    nodes = [
        n("Pad", ["x"], ["p"], mode="constant", pads=[0, 0, 1, 2, 0, 0, 2, 1], value=0.5),
        n("Dropout", ["p"], ["d"], ratio=0.3),
        n("Identity", ["d"], ["i"]),
        n("Conv", ["i", "w1"], ["c1"], kernel_shape=[3, 3], strides=[3, 3]),
        n("Flatten", ["c1"], ["y"]),
    ]
    return model("pad_attributes", nodes, [weight("w1", 1, C, 3, 3)], [9], opset=9)


def shape_folding():
    """PyTorch's dynamic flatten: Shape, Gather, Unsqueeze, Concat, Reshape, plus Cast,
    ConstantOfShape, Slice, Squeeze and Constant nodes, all folded at load time."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("Shape", ["c1"], ["shp"]),
        n("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, np.int64))),
        n("Gather", ["shp", "zero"], ["batch"], axis=0),
        n("Unsqueeze", ["batch", "ax0"], ["b1"]),
        n("Constant", [], ["minus1"], value_ints=[-1]),
        n("Concat", ["b1", "minus1"], ["target"], axis=0),
        n("Reshape", ["c1", "target"], ["flat"]),
        n("Slice", ["shp", "st", "en", "ax0", "one"], ["hw"]),
        n("ConstantOfShape", ["two"], ["ones"],
          value=numpy_helper.from_array(np.array([1.0], np.float32))),
        n("Cast", ["ones"], ["ones_f"], to=TensorProto.FLOAT),
        n("Squeeze", ["scale", "ax0"], ["scale1"]),
        n("Mul", ["flat", "scale1"], ["fs"]),
        n("Gemm", ["fs", "w2"], ["y"]),
    ]
    inits = [weight("w1", 1, C, 3, 3), ints("ax0", [0]), ints("st", [2]), ints("en", [4]),
             ints("one", [1]), ints("two", [2]),
             numpy_helper.from_array(np.full((1, 1), 0.5, np.float32), "scale"),
             weight("w2", H * W, 2)]
    return model("shape_folding", nodes, inits, [2])


def slice_attributes():
    """Slice in its opset-9 form (starts, ends, axes as attributes) on a constant, and
    Reshape with a constant target."""
    n = helper.make_node
    nodes = [
        n("Constant", [], ["shape_full"], value=ints("v", [1, 0, -1, 7])),
        n("Slice", ["shape_full"], ["shape2"], starts=[1], ends=[3], axes=[0]),
        n("Conv", ["x", "w1"], ["c1"], kernel_shape=[1, 1]),
        n("Reshape", ["c1", "shape2"], ["r"]),
        n("Flatten", ["r"], ["y"], axis=1),
    ]
    return model("slice_attributes", nodes, [weight("w1", 1, C, 1, 1)], [H * W], opset=9)


SEEDS = [conv_autopad, pools_activations, pads_and_arithmetic, reduce_attributes,
         pad_attributes, shape_folding, slice_attributes]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fuzz/corpus_onnx")
    ap.add_argument("--geolrp", help="check that every seed loads with `geolrp info`")
    a = ap.parse_args()
    bad = 0
    for make in SEEDS:
        m = make()
        path = os.path.join(a.out, make.__name__ + ".onnx")
        data = m.SerializeToString()
        with open(path, "wb") as f:
            f.write(data)
        status = ""
        if a.geolrp:
            r = subprocess.run([a.geolrp, "info", path], capture_output=True, text=True)
            status = "loads" if r.returncode == 0 else "REFUSED: " + r.stderr.strip()
            bad += r.returncode != 0
        print(f"{path}: {len(data)} bytes {status}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
