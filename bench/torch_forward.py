#!/usr/bin/python3
"""PyTorch CPU forward of the benchmark reference model, for the ratios in bench/run.sh:
the same model (bench/make_model.py), the same tiles, the same batch and thread count.
Prints one JSON line like engine_bench. Median over repeated runs after a warm-up.

Usage: /usr/bin/python3 bench/torch_forward.py TILES.npy [--threads N] [--batch N] [--reps N]
       [--min-seconds S]
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model import reference_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('tiles')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--reps', type=int, default=7)
    ap.add_argument('--min-seconds', type=float, default=2.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x = torch.from_numpy(np.load(a.tiles)[:a.batch].copy())
    model = reference_model()
    times = []
    with torch.inference_mode():
        model(x)
        start = time.perf_counter()
        while len(times) < a.reps or time.perf_counter() - start < a.min_seconds:
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    print(json.dumps({'what': 'pytorch-forward', 'threads': a.threads, 'batch': a.batch,
                      'tiles_per_s': round(a.batch / statistics.median(times), 3),
                      'torch': torch.__version__, 'mkldnn': torch.backends.mkldnn.is_available()}))


if __name__ == '__main__':
    main()
