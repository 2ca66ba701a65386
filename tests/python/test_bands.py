#!/usr/bin/python3
"""geolrp bands: band importance, occlusion faithfulness, and agreement of JSON/CSV/SVG.

A synthetic 8-band raster where the class depends only on bands 2 and 5 (1-based), and a
model whose first layer reads only those bands: they must hold >= 95% of |R|, rank first,
and occlusion must agree on relevant vs irrelevant bands.

Run: /usr/bin/python3 tests/python/test_bands.py --geolrp build/geolrp
"""

import csv
import json
import os
import shutil
import tempfile
import unittest
import xml.etree.ElementTree as ET

import numpy as np
import torch
from torch import nn

import scene_testlib as S

RELEVANT = (1, 4)  # 0-based bands 2 and 5
C, TILE = 8, 16
NAMES = ['b%d_%s' % (k + 1, 'signal' if k in RELEVANT else 'noise') for k in range(C)]


class Picker(nn.Module):
    """1x1 conv reading only the relevant bands (weights elsewhere exactly 0), ReLU, a
    3x3 conv, global average, and a linear layer: class 1 when the relevant bands are
    bright."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(C, 4, 1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            w = torch.zeros(4, C, 1, 1)
            for o in range(4):
                w[o, RELEVANT[0]] = 0.6 + 0.1 * o
                w[o, RELEVANT[1]] = 0.9 - 0.1 * o
            self.c1.weight.copy_(w)
            self.c1.bias.fill_(0.0)
            self.c2.weight.fill_(1.0 / 36)
            self.c2.bias.fill_(0.0)
            self.fc.weight.copy_(torch.tensor([[-1.0] * 4, [1.0] * 4]))
            self.fc.bias.copy_(torch.tensor([1.2, -1.2]))

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        return self.fc(x.mean(dim=(2, 3)))


def make_scene(path, seed=3):
    """128 x 128: left half class 0 (relevant bands dim), right half class 1 (bright);
    irrelevant bands are noise of the same spread everywhere."""
    rng = np.random.default_rng(seed)
    H = W = 128
    arr = rng.uniform(0.0, 2.0, size=(C, H, W)).astype(np.float32)
    for b in RELEVANT:
        arr[b, :, :W // 2] = rng.uniform(0.0, 0.4, size=(H, W // 2))
        arr[b, :, W // 2:] = rng.uniform(1.2, 2.0, size=(H, W - W // 2))
    gt = (500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0)
    from osgeo import osr
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    return S.write_array(path, arr, gt=gt, wkt=srs.ExportToWkt(), descriptions=NAMES,
                         dtype=S.gdal.GDT_Float32)


class BandImportance(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='geolrp_bands_')
        cls.scene = make_scene(os.path.join(cls.tmp, 'scene.tif'))
        cls.model = os.path.join(cls.tmp, 'picker.onnx')
        m = Picker().eval()
        torch.onnx.export(m, torch.zeros(1, C, TILE, TILE), cls.model, input_names=['input'],
                          output_names=['logits'], dynamic_axes={'input': {0: 'N'}},
                          opset_version=13)
        import onnx
        mp = onnx.load(cls.model)
        e = mp.metadata_props.add()
        e.key, e.value = 'class_names', json.dumps({'0': 'dim', '1': 'bright'})
        onnx.save(mp, cls.model)
        cls.out = {k: os.path.join(cls.tmp, 'bands.' + k) for k in ('json', 'csv', 'svg')}
        r = S.run(['bands', cls.scene, '-m', cls.model, '--json', cls.out['json'], '--csv',
                   cls.out['csv'], '--plot', cls.out['svg'], '--occlusion', '-q'])
        assert r.code == 0, r
        cls.stderr = r.stderr
        with open(cls.out['json']) as f:
            cls.doc = json.load(f)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_relevant_bands_hold_the_relevance(self):
        bands = self.doc['bands']
        self.assertEqual([b['name'] for b in bands], NAMES)
        share = sum(bands[k]['share'] for k in RELEVANT)
        self.assertGreaterEqual(share, 95.0, bands)
        top = sorted(range(C), key=lambda k: bands[k]['rank'])[:len(RELEVANT)]
        self.assertEqual(sorted(top), sorted(RELEVANT))

    def test_occlusion_agrees(self):
        bands = self.doc['bands']
        drops = [b['occlusion_drop'] for b in bands]
        for k in RELEVANT:
            self.assertGreater(drops[k], 1e-3, drops)
        for k in range(C):
            if k not in RELEVANT:
                self.assertAlmostEqual(drops[k], 0.0, places=6)
        # Spearman of the binary orderings (relevant above irrelevant) is 1 for both.
        lrp_order = sorted(range(C), key=lambda k: -bands[k]['relevance_abs_sum'])
        occ_order = sorted(range(C), key=lambda k: -drops[k])
        self.assertEqual(set(lrp_order[:2]), set(RELEVANT))
        self.assertEqual(set(occ_order[:2]), set(RELEVANT))
        self.assertIsNotNone(self.doc['spearman_lrp_vs_occlusion'])

    def test_per_class_and_pixels(self):
        pc = self.doc['per_class']
        self.assertEqual(set(pc), {'dim', 'bright'})
        self.assertEqual(pc['dim']['pixels'] + pc['bright']['pixels'], 128 * 128)
        self.assertGreater(pc['dim']['pixels'], 4000)
        self.assertGreater(pc['bright']['pixels'], 4000)
        for name in pc:
            bands = pc[name]['bands']
            self.assertAlmostEqual(sum(b['share'] for b in bands), 100.0, places=3)
        # every share is |R| of the band over the total
        b = self.doc['bands']
        tot = sum(x['relevance_abs_sum'] for x in b)
        for x in b:
            self.assertAlmostEqual(x['share'], 100 * x['relevance_abs_sum'] / tot, places=4)
            self.assertAlmostEqual(x['positive_sum'] + x['negative_sum'], x['relevance_sum'],
                                   delta=1e-6 * max(1.0, x['relevance_abs_sum']))

    def test_rules_recorded_and_default_composite(self):
        self.assertEqual(self.doc['composite'], 'epsilon-gamma-box')
        self.assertIn('#0=zbox', self.doc['rules'])

    def test_csv_agrees_with_json(self):
        with open(self.out['csv'], newline='') as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), C * (1 + 2))
        allrows = [r for r in rows if r['class'] == 'all']
        for r, b in zip(allrows, self.doc['bands']):
            self.assertEqual(r['name'], b['name'])
            for key in ('relevance_sum', 'relevance_abs_sum', 'positive_sum', 'negative_sum',
                        'share', 'mean', 'rank', 'occlusion_drop'):
                self.assertAlmostEqual(float(r[key]), b[key], delta=1e-6 * max(1, abs(b[key])))
        dim = [r for r in rows if r['class'] == 'dim']
        for r, b in zip(dim, self.doc['per_class']['dim']['bands']):
            self.assertAlmostEqual(float(r['share']), b['share'], places=5)

    def test_svg_agrees_with_json(self):
        root = ET.parse(self.out['svg']).getroot()
        ns = {'s': 'http://www.w3.org/2000/svg'}
        texts = [t.text for t in root.iter('{http://www.w3.org/2000/svg}text') if t.text]
        for name in NAMES:
            self.assertIn(name, texts)
        panels = root.findall('s:g', ns)
        self.assertEqual(len(panels), 3)  # all, dim, bright
        tot = sum(b['relevance_abs_sum'] for b in self.doc['bands'])
        for rect in panels[0].findall('s:rect', ns):
            k = int(rect.get('data-band')) - 1
            b = self.doc['bands'][k]
            part = b['positive_sum'] if rect.get('class') == 'pos' else -b['negative_sum']
            title = rect.find('s:title', ns).text
            self.assertAlmostEqual(float(title.split()[1].rstrip('%')), 100 * part / tot,
                                   delta=0.01)

    def test_flat_first_layer_warns(self):
        out = os.path.join(self.tmp, 'flat.json')
        r = S.run(['bands', self.scene, '-m', self.model, '--json', out, '--composite',
                   'epsilon-plus-flat'])
        self.assertEqual(r.code, 0, r)
        self.assertIn('flat', r.stderr)
        with open(out) as f:
            doc = json.load(f)
        self.assertTrue(any('flat' in w for w in doc['warnings']))

    def test_explain_bands_report_same_pass(self):
        out = os.path.join(self.tmp, 'same.json')
        rel = os.path.join(self.tmp, 'rel.tif')
        r = S.run(['explain', self.scene, '-m', self.model, '-o', rel, '--bands-report', out,
                   '-q'])
        self.assertEqual(r.code, 0, r)
        with open(out) as f:
            doc = json.load(f)
        for a, b in zip(doc['bands'], self.doc['bands']):
            self.assertAlmostEqual(a['relevance_sum'], b['relevance_sum'],
                                   delta=1e-5 * max(1, b['relevance_abs_sum']))

    def test_usage_errors(self):
        r = S.run(['bands', self.scene, '-m', self.model])
        self.assertEqual(r.code, 2, r)
        r = S.run(['bands', self.scene, '-m', self.model, '--json',
                   os.path.join(self.tmp, 'x.json'), '--target', 'all'])
        self.assertEqual(r.code, 2, r)
        r = S.run(['bands', self.scene, '-m', self.model, '--json', self.out['json']])
        self.assertEqual(r.code, 2, r)  # exists, no --overwrite


if __name__ == '__main__':
    S.parse_argv()
    unittest.main(verbosity=2)
