#!/usr/bin/python3
"""The benchmark reference model (issue "Performance"): input 13 x 64 x 64 (a Sentinel-2
patch), conv3x3 32, conv3x3 32, maxpool 2, conv3x3 64, conv3x3 64, maxpool 2, flatten,
dense 128, dense 10, ReLU after every conv and hidden dense, same padding. Random fixed-
seed weights: throughput does not depend on training.

Usage: /usr/bin/python3 bench/make_model.py OUT.onnx
"""
import sys

import torch
from torch import nn


def reference_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(13, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 16 * 16, 128), nn.ReLU(), nn.Linear(128, 10)).eval()


if __name__ == '__main__':
    out = sys.argv[1] if len(sys.argv) > 1 else 'bench_model.onnx'
    torch.onnx.export(reference_model(), torch.zeros(1, 13, 64, 64), out,
                      input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}}, opset_version=13)
    print(out)
