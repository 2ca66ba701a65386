#!/usr/bin/python3
"""Train geolrp's default model: a cloud / clear patch classifier for the
Landsat 8 scene LC80200392015216LGN00 shipped in data/landsat8/.

Run from anywhere (paths default to the repository this script lives in):

    /usr/bin/python3 tools/train_cloud_model.py [--out-dir data/models]

Use Debian's /usr/bin/python3 (torch 1.13, onnx 1.12, numpy, GDAL bindings);
a pyenv `python3` on PATH may lack them.

What it does
  * Reads the 10-band DN stack (B1-B7, B9, B10, B11) and the BQA band.
  * Label: a pixel is "cloudy" when BQA bits 14-15 (cloud confidence) are
    >= 2 (medium or high).  A 32x32 patch's target is its cloud fraction;
    class 1 "cloud" when the fraction >= CLOUD_THRESHOLD, else class 0 "clear".
  * Spatial split: validation = vertical strip of columns [VAL_C0, VAL_C1);
    a BUFFER-pixel (one patch width) strip on each side is unused; training
    patches lie entirely in columns [0, VAL_C0-BUFFER) or [VAL_C1+BUFFER, W).
    No validation patch overlaps or touches a training patch.
  * Normalisation: per-band mean/std of DN over the training-area pixels.
    The network input is (x - mean) / std; the normalisation is NOT part of
    the ONNX graph, mean/std are stored in the ONNX metadata instead.
  * Small CNN (Conv/ReLU/MaxPool/Flatten/Gemm only), logits output
    (no Softmax), exported with opset 13 to <out-dir>/landsat8_cloud.onnx
    plus a human readable <out-dir>/landsat8_cloud.json.
Deterministic given SEED (CPU, 2 threads, deterministic algorithms).
"""

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    from osgeo import gdal
except ImportError:  # pragma: no cover
    sys.exit("GDAL python bindings missing: apt-get install -y python3-gdal "
             "and run with /usr/bin/python3")
import onnx
from onnx import helper, numpy_helper

# ---------------------------------------------------------------- settings
SEED = 20150804
PATCH = 32                 # patch size == model input size (geolrp tile size)
TRAIN_STRIDE = 4           # dense sampling of training patches
VAL_STRIDE = 8             # validation patch stride (primary metric)
CLOUD_CONF_MIN = 2         # BQA bits 14-15: 2 = medium, 3 = high
CLOUD_THRESHOLD = 0.5      # patch cloud fraction >= this -> class 1 "cloud"
VAL_C0, VAL_C1 = 128, 256  # validation strip (pixel columns, all rows)
BUFFER = PATCH             # unused gap between training and validation areas
EPOCHS = 12
BATCH = 64
LR = 1e-3
WEIGHT_DECAY = 1e-4
SCENE_ID = "LC80200392015216LGN00"
CLASS_NAMES = {"0": "clear", "1": "cloud"}

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(REPO, "data", "landsat8")
STACK_NAME = "LC80200392015216_10band.tif"
BQA_NAME = "LC80200392015216_BQA.tif"


def log(*a):
    print(*a, flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------ model
class CloudNet(nn.Module):
    def __init__(self, in_bands=10, n_classes=2):
        super().__init__()
        self.conv1 = nn.Conv2d(in_bands, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(32 * (PATCH // 4) * (PATCH // 4), 32)
        self.fc2 = nn.Linear(32, n_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = F.relu(self.conv3(x))
        x = self.flatten(x)
        x = F.relu(self.fc1(x))
        return self.fc2(x)  # logits, no softmax


# ------------------------------------------------------------------- data
def read_scene(data_dir):
    stack_path = os.path.join(data_dir, STACK_NAME)
    bqa_path = os.path.join(data_dir, BQA_NAME)
    ds = gdal.Open(stack_path)
    if ds is None:
        sys.exit("cannot open " + stack_path)
    band_names = [ds.GetRasterBand(i + 1).GetDescription()
                  for i in range(ds.RasterCount)]
    x = ds.ReadAsArray().astype(np.float32)          # (10, H, W) DN
    q = gdal.Open(bqa_path).ReadAsArray()             # (H, W) uint16
    if q.shape != x.shape[1:]:
        sys.exit("BQA and stack differ in size")
    cloudy = ((q.astype(np.uint16) >> 14) & 3) >= CLOUD_CONF_MIN
    return x, cloudy, band_names, stack_path, bqa_path


def patch_fractions(cloudy, rows, cols):
    """Cloud fraction of the PATCH x PATCH patch at each (row, col) corner."""
    ii = np.pad(cloudy.astype(np.float64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    r, c = rows, cols
    s = ii[r + PATCH, c + PATCH] - ii[r, c + PATCH] - ii[r + PATCH, c] + ii[r, c]
    return s / float(PATCH * PATCH)


def grid(h, w, stride, c_lo, c_hi):
    """Patch corners whose patch lies fully inside columns [c_lo, c_hi)."""
    rs = np.arange(0, h - PATCH + 1, stride)
    cs = np.arange(c_lo, c_hi - PATCH + 1, stride)
    rr, cc = np.meshgrid(rs, cs, indexing="ij")
    return rr.ravel(), cc.ravel()


def extract(xn, rows, cols):
    out = np.empty((len(rows), xn.shape[0], PATCH, PATCH), np.float32)
    for i, (r, c) in enumerate(zip(rows, cols)):
        out[i] = xn[:, r:r + PATCH, c:c + PATCH]
    return out


def confusion(y_true, y_pred, n=2):
    m = np.zeros((n, n), np.int64)
    for t, p in zip(y_true, y_pred):
        m[t, p] += 1
    return m


def metrics(y_true, y_pred):
    m = confusion(y_true, y_pred)
    acc = float(np.trace(m) / m.sum())
    recall = {CLASS_NAMES[str(k)]: float(m[k, k] / max(m[k].sum(), 1))
              for k in range(2)}
    precision = {CLASS_NAMES[str(k)]: float(m[k, k] / max(m[:, k].sum(), 1))
                 for k in range(2)}
    bal = float(np.mean(list(recall.values())))
    return {"accuracy": acc, "balanced_accuracy": bal, "recall": recall,
            "precision": precision, "confusion_matrix": m.tolist()}


def predict(model, xs, batch=512):
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(xs), batch):
            out.append(model(torch.from_numpy(xs[i:i + batch])).numpy())
    return np.concatenate(out)


# --------------------------------------------------- numpy reference check
def numpy_forward(onnx_model, x):
    """Independent forward pass from the ONNX initializers (no onnxruntime
    here), used to check that the exported graph holds the trained weights."""
    init = {t.name: numpy_helper.to_array(t)
            for t in onnx_model.graph.initializer}
    vals = {onnx_model.graph.input[0].name: x.astype(np.float64)}
    for node in onnx_model.graph.node:
        ins = [vals[i] if i in vals else init.get(i) for i in node.input]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        op = node.op_type
        if op == "Conv":
            inp, wt = ins[0], ins[1]
            b = ins[2] if len(ins) > 2 else 0.0
            p = attrs.get("pads", [0, 0, 0, 0])
            inp = np.pad(inp, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])))
            k = wt.shape[2]
            ho, wo = inp.shape[2] - k + 1, inp.shape[3] - k + 1
            cols = np.stack([inp[:, :, i:i + ho, j:j + wo]
                             for i in range(k) for j in range(k)], axis=2)
            # cols: N, C, k*k, ho, wo ; wt: O, C, k, k
            y = np.einsum("nckhw,ock->nohw", cols, wt.reshape(wt.shape[0], wt.shape[1], -1))
            y = y + np.asarray(b).reshape(1, -1, 1, 1)
        elif op == "Relu":
            y = np.maximum(ins[0], 0)
        elif op == "MaxPool":
            n, c, h, w = ins[0].shape
            y = ins[0].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
        elif op == "Flatten":
            y = ins[0].reshape(ins[0].shape[0], -1)
        elif op == "Gemm":
            a, bm = ins[0], ins[1]
            if attrs.get("transB", 0):
                bm = bm.T
            y = a @ bm + (ins[2] if len(ins) > 2 else 0.0)
        else:
            raise RuntimeError("numpy reference: unhandled op " + op)
        vals[node.output[0]] = y
    return vals[onnx_model.graph.output[0].name]


# ------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default="data/models",
                    help="output directory (relative paths are relative to "
                         "the repository root); default data/models")
    ap.add_argument("--data-dir", default=DEFAULT_DATA,
                    help="directory with the Landsat 8 stack and BQA")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    args = ap.parse_args()
    out_dir = args.out_dir if os.path.isabs(args.out_dir) else os.path.join(REPO, args.out_dir)
    os.makedirs(out_dir, exist_ok=True)

    t_start = time.time()
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    rng = np.random.default_rng(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)

    x, cloudy, band_names, stack_path, bqa_path = read_scene(args.data_dir)
    nb, h, w = x.shape
    log(f"scene {SCENE_ID}: {nb} bands {w} x {h}; bands {band_names}")
    log(f"pixel cloud fraction (BQA conf >= {CLOUD_CONF_MIN}): {cloudy.mean():.4f}")

    # ---- split
    train_ranges = [(0, VAL_C0 - BUFFER), (VAL_C1 + BUFFER, w)]
    tr_r, tr_c = [], []
    for lo, hi in train_ranges:
        r, c = grid(h, w, TRAIN_STRIDE, lo, hi)
        tr_r.append(r); tr_c.append(c)
    tr_r, tr_c = np.concatenate(tr_r), np.concatenate(tr_c)
    va_r, va_c = grid(h, w, VAL_STRIDE, VAL_C0, VAL_C1)
    va32_r, va32_c = grid(h, w, PATCH, VAL_C0, VAL_C1)   # non-overlapping tiles
    # sanity: no validation patch overlaps a training patch (gap >= BUFFER)
    assert tr_c[tr_c < VAL_C0].max() + PATCH <= VAL_C0 - BUFFER
    assert tr_c[tr_c >= VAL_C1].min() >= VAL_C1 + BUFFER
    assert va_c.min() >= VAL_C0 and va_c.max() + PATCH <= VAL_C1

    f_tr = patch_fractions(cloudy, tr_r, tr_c)
    f_va = patch_fractions(cloudy, va_r, va_c)
    f_va32 = patch_fractions(cloudy, va32_r, va32_c)
    y_tr = (f_tr >= CLOUD_THRESHOLD).astype(np.int64)
    y_va = (f_va >= CLOUD_THRESHOLD).astype(np.int64)
    y_va32 = (f_va32 >= CLOUD_THRESHOLD).astype(np.int64)
    bal_tr = np.bincount(y_tr, minlength=2).tolist()
    bal_va = np.bincount(y_va, minlength=2).tolist()
    bal_va32 = np.bincount(y_va32, minlength=2).tolist()
    log(f"train patches {len(y_tr)} (stride {TRAIN_STRIDE}): clear {bal_tr[0]} cloud {bal_tr[1]}")
    log(f"val patches   {len(y_va)} (stride {VAL_STRIDE}): clear {bal_va[0]} cloud {bal_va[1]}")
    if min(bal_tr) == 0 or min(bal_va) == 0:
        sys.exit("split has a missing class; choose another validation strip")

    # ---- normalisation from training-area pixels
    train_cols = np.zeros(w, bool)
    for lo, hi in train_ranges:
        train_cols[lo:hi] = True
    xt = x[:, :, train_cols].reshape(nb, -1).astype(np.float64)
    mean = xt.mean(axis=1)
    std = xt.std(axis=1)
    del xt
    xn = ((x - mean[:, None, None].astype(np.float32))
          / std[:, None, None].astype(np.float32)).astype(np.float32)
    valid_min = xn.reshape(nb, -1).min(axis=1)
    valid_max = xn.reshape(nb, -1).max(axis=1)
    log("mean", np.round(mean, 2).tolist())
    log("std ", np.round(std, 2).tolist())

    X_tr = extract(xn, tr_r, tr_c)
    X_va = extract(xn, va_r, va_c)
    X_va32 = extract(xn, va32_r, va32_c)

    # ---- training
    model = CloudNet(nb, 2)
    n_params = sum(p.numel() for p in model.parameters())
    # inverse-frequency class weights (train set only) against the imbalance
    cw = len(y_tr) / (2.0 * np.array(bal_tr, np.float64))
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(cw, dtype=torch.float32))
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    log(f"model: {n_params} parameters; class weights {np.round(cw, 3).tolist()}; "
        f"{args.epochs} epochs, batch {BATCH}, Adam lr {LR}")
    Xt = torch.from_numpy(X_tr)
    Yt = torch.from_numpy(y_tr)
    t_train = time.time()
    for ep in range(args.epochs):
        model.train()
        perm = rng.permutation(len(y_tr))
        tot, n, correct = 0.0, 0, 0
        for i in range(0, len(perm), BATCH):
            idx = torch.from_numpy(perm[i:i + BATCH])
            xb, yb = Xt[idx], Yt[idx]
            # augmentation: random rot90 (0-3) and horizontal flip per batch
            k = int(rng.integers(4))
            if k:
                xb = torch.rot90(xb, k, dims=(2, 3))
            if rng.random() < 0.5:
                xb = torch.flip(xb, dims=(3,))
            opt.zero_grad()
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            opt.step()
            tot += float(loss) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            n += len(idx)
        sched.step()
        log(f"epoch {ep + 1:2d}/{args.epochs}  loss {tot / n:.4f}  "
            f"running train acc {correct / n:.4f}  ({time.time() - t_train:.0f} s)")
    train_seconds = time.time() - t_train

    # ---- evaluation (validation is only looked at here, once)
    m_tr = metrics(y_tr, predict(model, X_tr).argmax(1))
    m_va = metrics(y_va, predict(model, X_va).argmax(1))
    m_va32 = metrics(y_va32, predict(model, X_va32).argmax(1))
    log("validation (stride 8): acc {accuracy:.4f} balanced {balanced_accuracy:.4f}".format(**m_va))
    log("  recall", m_va["recall"], " precision", m_va["precision"])
    log("  confusion [[clear->clear, clear->cloud], [cloud->clear, cloud->cloud]]:",
        m_va["confusion_matrix"])
    log("validation (non-overlapping 32 px tiles): acc {accuracy:.4f} cm {confusion_matrix}".format(**m_va32))
    log("train: acc {accuracy:.4f} cm {confusion_matrix}".format(**m_tr))

    # ---- export
    onnx_path = os.path.join(out_dir, "landsat8_cloud.onnx")
    model.eval()
    dummy = torch.from_numpy(X_va[:2].copy())
    torch.onnx.export(model, dummy, onnx_path, opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True)
    f6 = lambda a: [round(float(v), 6) for v in a]
    training_str = (f"tools/train_cloud_model.py seed={SEED} epochs={args.epochs}; "
                    f"scene {SCENE_ID}; labels BQA cloud confidence>=medium, "
                    f"patch cloud fraction>={CLOUD_THRESHOLD}; val = columns "
                    f"{VAL_C0}-{VAL_C1 - 1} (buffer {BUFFER} px); "
                    f"val accuracy {m_va['accuracy']:.4f} "
                    f"(balanced {m_va['balanced_accuracy']:.4f}, n={len(y_va)})")
    meta = {
        "class_names": json.dumps(CLASS_NAMES),
        "band_names": json.dumps(band_names),
        "standardization_mean": json.dumps(f6(mean)),
        "standardization_std": json.dumps(f6(std)),
        "tile_size": str(PATCH),
        "tiles_overlap": "50",
        "model_type": "classification",
        "valid_min": json.dumps(f6(valid_min)),
        "valid_max": json.dumps(f6(valid_max)),
        "training": training_str,
    }
    om = onnx.load(onnx_path)
    del om.metadata_props[:]
    helper.set_model_props(om, meta)
    om.producer_name = "geolrp tools/train_cloud_model.py"
    om.doc_string = ("geolrp default model: Landsat 8 cloud/clear classifier for 32x32 "
                     "patches of 10 standardised bands; outputs logits (no softmax).")
    onnx.checker.check_model(om)
    onnx.save(om, onnx_path)

    # ---- verify the saved file
    re = onnx.load(onnx_path)
    onnx.checker.check_model(re)
    props = {p.key: p.value for p in re.metadata_props}
    assert props == meta, "metadata did not round-trip"
    ops = sorted({n.op_type for n in re.graph.node})
    log("ONNX ops:", ops, " size", os.path.getsize(onnx_path), "bytes")
    log(helper.printable_graph(re.graph).splitlines()[0])
    for k in sorted(props):
        log(f"  meta {k} = {props[k]}")
    ref = numpy_forward(re, X_va[:16])
    tor = predict(model, X_va[:16])
    max_diff = float(np.abs(ref - tor).max())
    log(f"numpy re-implementation of the ONNX graph vs torch: max |diff| {max_diff:.2e}")
    assert max_diff < 1e-3

    total_seconds = time.time() - t_start
    info = {
        "model_file": "landsat8_cloud.onnx",
        "description": "Cloud / clear classifier for 32x32 patches of Landsat 8 "
                       "(10 bands, DN standardised per band); outputs logits",
        "scene": {"id": SCENE_ID, "date": "2015-08-04",
                  "stack": os.path.relpath(stack_path, REPO),
                  "stack_sha256": sha256(stack_path),
                  "bqa": os.path.relpath(bqa_path, REPO),
                  "bqa_sha256": sha256(bqa_path),
                  "width": w, "height": h, "crs": "EPSG:32616"},
        "input": {"name": "input", "shape": ["batch", nb, PATCH, PATCH],
                  "normalisation": "(DN - standardization_mean) / standardization_std, "
                                   "applied outside the ONNX graph"},
        "output": {"name": "logits", "shape": ["batch", 2], "softmax": False},
        "metadata_props": meta,
        "class_names": CLASS_NAMES,
        "band_names": band_names,
        "standardization_mean": f6(mean),
        "standardization_std": f6(std),
        "valid_min": f6(valid_min),
        "valid_max": f6(valid_max),
        "tile_size": PATCH,
        "tiles_overlap": 50,
        "labels": {"source": "BQA bits 14-15 (cloud confidence)",
                   "cloudy_pixel": f"confidence >= {CLOUD_CONF_MIN} (medium or high)",
                   "patch_target": "cloud fraction of the 32x32 patch",
                   "cloud_threshold": CLOUD_THRESHOLD,
                   "scene_pixel_cloud_fraction": round(float(cloudy.mean()), 6)},
        "split": {"description": (
                      f"vertical strips: validation = pixel columns {VAL_C0}-{VAL_C1 - 1} "
                      f"(all rows); buffers = columns {VAL_C0 - BUFFER}-{VAL_C0 - 1} and "
                      f"{VAL_C1}-{VAL_C1 + BUFFER - 1} (unused); training = columns "
                      f"0-{VAL_C0 - BUFFER - 1} and {VAL_C1 + BUFFER}-{w - 1}; every "
                      f"patch lies fully inside its area, so no validation patch "
                      f"overlaps a training patch"),
                  "val_columns": [VAL_C0, VAL_C1], "buffer_px": BUFFER,
                  "train_columns": [list(r) for r in train_ranges],
                  "train_stride": TRAIN_STRIDE, "val_stride": VAL_STRIDE,
                  "normalisation_from": "training-area pixels only"},
        "training": {"script": "tools/train_cloud_model.py", "seed": SEED,
                     "epochs": args.epochs, "batch_size": BATCH,
                     "optimizer": f"Adam lr={LR} weight_decay={WEIGHT_DECAY}, cosine schedule",
                     "loss": "cross-entropy with inverse-frequency class weights",
                     "class_weights": f6(cw),
                     "augmentation": "random rot90 and horizontal flip per batch",
                     "parameters": n_params,
                     "torch": torch.__version__, "onnx": onnx.__version__,
                     "opset": 13, "threads": 2,
                     "train_seconds": round(train_seconds, 1),
                     "total_seconds": round(total_seconds, 1)},
        "sizes": {"train_patches": int(len(y_tr)), "val_patches": int(len(y_va)),
                  "val_tiles_32": int(len(y_va32))},
        "class_balance": {"train": {"clear": bal_tr[0], "cloud": bal_tr[1]},
                          "val": {"clear": bal_va[0], "cloud": bal_va[1]},
                          "val_tiles_32": {"clear": bal_va32[0], "cloud": bal_va32[1]}},
        "metrics": {"confusion_matrix_layout": "rows = true class (clear, cloud), "
                                               "columns = predicted class (clear, cloud)",
                    "val": m_va, "val_tiles_32": m_va32, "train": m_tr},
        "verification": {"onnx_checker": "passed", "ops": ops,
                         "numpy_reference_max_abs_diff": max_diff,
                         "onnx_bytes": os.path.getsize(onnx_path)},
    }
    json_path = os.path.join(out_dir, "landsat8_cloud.json")
    with open(json_path, "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    log(f"wrote {onnx_path}\nwrote {json_path}")
    log(f"VAL accuracy {m_va['accuracy']:.4f}  recall {m_va['recall']}  "
        f"confusion {m_va['confusion_matrix']}  (train {train_seconds:.0f} s, "
        f"total {total_seconds:.0f} s)")


if __name__ == "__main__":
    main()
