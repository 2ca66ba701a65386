#!/usr/bin/python3
"""Pictures of typical relevance maps per rule for docs/artifacts.md.

For a few synthetic variants, one sample of each class is explained by the zoo's
cnn_maxpool model with several composites; the input and each map are drawn as an SVG grid
(diverging colours centred on 0, each map scaled to its own max |R|; the ground-truth
square outlined). No plotting library needed; with rsvg-convert (Debian's librsvg2-bin) the SVGs become PNGs.

Usage: /usr/bin/python3 tools/artifact_maps.py [--geolrp build/geolrp] [--out docs/img]
"""
import argparse
import os
import shutil
import subprocess
import tempfile

import numpy as np

RULES = ['epsilon', 'epsilon-plus-flat', 'epsilon-gamma-box', 'epsilon-alpha2-beta1', 'flat',
         'wsquare']
VARIANTS = ['zero', 'shifted', 'absence', 'border']
CELL = 3  # px per image pixel


def color(v):
    """-1..1 -> blue #2166ac, white #f7f7f7, red #b2182b."""
    lo, mid, hi = (33, 102, 172), (247, 247, 247), (178, 24, 43)
    a, b = (mid, hi) if v >= 0 else (mid, lo)
    t = min(abs(v), 1.0)
    return '#%02x%02x%02x' % tuple(int(round(a[k] + (b[k] - a[k]) * t)) for k in range(3))


def gray(v, lo, hi):
    g = int(round(255 * (v - lo) / (hi - lo))) if hi > lo else 128
    return '#%02x%02x%02x' % (g, g, g)


def image(parts, img, x0, y0, fn, mask):
    h, w = img.shape
    for y in range(h):
        for x in range(w):
            parts.append('<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>' % (
                x0 + x * CELL, y0 + y * CELL, CELL, CELL, fn(img[y, x])))
    ys, xs = np.nonzero(mask)
    parts.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#2a2" '
                 'stroke-width="1"/>' % (x0 + xs.min() * CELL, y0 + ys.min() * CELL,
                                          (xs.max() - xs.min() + 1) * CELL,
                                          (ys.max() - ys.min() + 1) * CELL))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--geolrp', default='build/geolrp')
    ap.add_argument('--out', default='docs/img')
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    tmp = tempfile.mkdtemp()
    for v in VARIANTS:
        d = os.path.join(tmp, v)
        subprocess.run([a.geolrp, 'synth', '-o', d, '--variant', v, '--count', '20', '--seed',
                        '7', '-q'], check=True)
        X, M, L = (np.load(os.path.join(d, n)) for n in ('X.npy', 'masks.npy', 'labels.npy'))
        pick = [int(np.nonzero(L == 1)[0][0]), int(np.nonzero(L == 0)[0][0])]
        xs = X[pick]
        np.save(os.path.join(d, 'pick.npy'), xs)
        maps = {}
        for r in RULES:
            out = os.path.join(d, r + '.npy')
            subprocess.run([a.geolrp, 'relevance', '-m', 'data/models/zoo/%s__cnn_maxpool.onnx' % v,
                            '-i', os.path.join(d, 'pick.npy'), '-o', out, '--composite', r,
                            '--low', str(float(X.min())), '--high', str(float(X.max())), '-q'],
                           check=True)
            maps[r] = np.load(out).sum(axis=1)
        size = 32 * CELL
        W = 110 + (len(RULES) + 1) * (size + 34)
        H = 40 + 2 * (size + 30)
        parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
                 'font-family="sans-serif" font-size="11">' % (W, H),
                 '<rect width="100%" height="100%" fill="white"/>',
                 '<text x="8" y="18" font-size="13" font-weight="bold">variant %s, model '
                 'cnn_maxpool: input, then relevance per composite (green: ground truth)</text>' % v]
        for col, name in enumerate(['input'] + RULES):
            parts.append('<text x="%d" y="36">%s</text>' % (110 + col * (size + 34), name))
        for row, (idx, lab) in enumerate(zip(range(2), (1, 0))):
            y0 = 44 + row * (size + 30)
            parts.append('<text x="8" y="%d">class %d</text>' % (y0 + size // 2, lab))
            x = xs[idx, 0]
            image(parts, x, 110, y0, lambda val: gray(val, float(X.min()), float(X.max())),
                  M[pick[idx]])
            for col, r in enumerate(RULES):
                m = maps[r][idx]
                s = float(np.abs(m).max()) or 1.0
                image(parts, m / s, 110 + (col + 1) * (size + 34), y0, color, M[pick[idx]])
        parts.append('</svg>')
        path = os.path.join(a.out, 'maps_%s.svg' % v)
        with open(path, 'w') as f:
            f.write('\n'.join(parts))
        # The SVG has a rect per pixel; a PNG is 50x smaller (rsvg-convert: librsvg2-bin).
        if shutil.which('rsvg-convert'):
            png = path[:-4] + '.png'
            subprocess.run(['rsvg-convert', path, '-o', png], check=True)
            os.remove(path)
            path = png
        print(path)


if __name__ == '__main__':
    main()
