#!/usr/bin/python3
"""Benchmark input: 64 x 64 tiles of the Sentinel-2 13-band sample, each band standardised
by its scene mean and standard deviation (as a trained model's input would be), as a
float32 .npy of shape (N, 13, 64, 64). Real data, so rules that branch on the sign of the
input (gamma, alpha-beta) do the work they do on scenes.

Usage: /usr/bin/python3 bench/make_tiles.py SCENE.tif OUT.npy [N]
"""
import sys

import numpy as np
from osgeo import gdal


def main():
    scene, out = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    ds = gdal.Open(scene)
    a = ds.ReadAsArray().astype(np.float32)
    ds = None
    mean = a.mean(axis=(1, 2), keepdims=True)
    std = a.std(axis=(1, 2), keepdims=True) + 1e-6
    a = (a - mean) / std
    c, h, w = a.shape
    tiles = [a[:, y:y + 64, x:x + 64] for y in range(0, h - 63, 32) for x in range(0, w - 63, 32)]
    if len(tiles) < n:
        sys.exit('%s: only %d tiles of 64 x 64, need %d' % (scene, len(tiles), n))
    np.save(out, np.ascontiguousarray(np.stack(tiles[:n])))


if __name__ == '__main__':
    main()
