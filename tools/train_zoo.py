#!/usr/bin/python3
"""Train the model zoo of geolrp's "fact or artifact" benchmark.

One small classifier per (synthetic variant, architecture): 6 variants of
`geolrp synth` x 7 architectures = 42 ONNX models in data/models/zoo/, plus
data/models/zoo/zoo.json.  See docs/model-zoo.md.

    /usr/bin/python3 tools/train_zoo.py [--geolrp build/geolrp]
        [--out data/models/zoo] [--variants noise zero ...] [--archs linear mlp ...]

Use Debian's /usr/bin/python3 (torch 1.13, onnx 1.12, numpy); a `python3`
on PATH may lack them.

What it does
  * Data: `geolrp synth --seed 1 --count 4000` (training) and
    `--seed 2 --count 1000` (test) into a temporary folder.  A sample depends
    only on (seed, index), so the data is reproducible from the generator.
  * Training: Adam (lr 1e-3), batch 64, CPU, 2 threads, deterministic
    algorithms; torch and numpy are re-seeded with SEED before every model,
    so a model does not depend on which other models are trained in the run.
    After every epoch the accuracy on the whole training set is measured
    (eval mode); training stops when it reaches TARGET_ACC (0.99) or after
    MAX_EPOCHS (15) epochs, MAX_EPOCHS_DENSE (40) for linear and mlp.
  * Export: opset 13, input "input", output "logits" (no Softmax), dynamic
    batch axis, model in eval mode, training=TrainingMode.PRESERVE and
    do_constant_folding=False (torch 1.13 fuses Conv+BatchNorm with
    TrainingMode.EVAL even without constant folding), metadata_props class_names, variant,
    architecture, test_accuracy, training.
  * Verification (skip with --no-verify): onnx.checker, BatchNormalization
    present in cnn_bn, `geolrp info` exits 0, and the --scores of
    `geolrp relevance` on the first --verify-count (64) test samples equal
    torch's outputs to 1e-4.  Mismatches are reported, not worked around;
    the exit status is 1 if any check failed.
  * zoo.json: entries of the trained models replace entries with the same
    (variant, architecture); other entries are kept.
"""

import argparse
import io
import json
import os
import subprocess
import shutil
import sys
import tempfile
import time
from collections import OrderedDict

# OpenMP threads that spin while waiting make 2-thread training many times
# slower when the 2 cores are shared with other work; let them sleep instead.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn as nn
import onnx

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = "tools/train_zoo.py"

VARIANTS = ["noise", "zero", "shifted", "absence", "border", "multiband"]
ARCHS = ["linear", "mlp", "cnn_maxpool", "cnn_valid", "cnn_avgpool", "cnn_bn",
         "single_output"]

SEED = 0              # torch / numpy seed, reset before every model
TRAIN_SEED, TEST_SEED = 1, 2   # geolrp synth seeds
TRAIN_COUNT, TEST_COUNT = 4000, 1000
SIZE = 32
BATCH = 64
LR = 1e-3
MAX_EPOCHS = 15       # epoch budget of the convolutional models
MAX_EPOCHS_DENSE = 40  # linear and mlp: an epoch costs ~0.1 s, they converge slower
TARGET_ACC = 0.99
MLP_HIDDEN = 64
TOL = 1e-4
CLASS_NAMES = '{"0": "class_0", "1": "class_1"}'


def log(*a):
    print(*a, flush=True)


# ------------------------------------------------------------------ models
def seq(*named):
    """nn.Sequential with named layers (the ONNX node names: /conv1/Conv ...)."""
    return nn.Sequential(OrderedDict(named))


def cnn(c, pool="max", padding=1, bn=False, outputs=2):
    """Conv3x3(c->8) [BN] ReLU Pool2 Conv3x3(8->16) [BN] ReLU Pool2 Flatten
    Linear(->32) ReLU Linear(32->outputs)."""
    s = SIZE
    s = (s + 2 * padding - 2) // 2
    s = (s + 2 * padding - 2) // 2
    layers = []
    for i, (cin, cout) in enumerate(((c, 8), (8, 16)), 1):
        layers.append(("conv%d" % i, nn.Conv2d(cin, cout, 3, padding=padding)))
        if bn:
            layers.append(("bn%d" % i, nn.BatchNorm2d(cout)))
        layers.append(("relu%d" % i, nn.ReLU()))
        layers.append(("pool%d" % i, nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2)))
    layers += [("flatten", nn.Flatten()), ("fc1", nn.Linear(16 * s * s, 32)),
               ("relu3", nn.ReLU()), ("fc2", nn.Linear(32, outputs))]
    return seq(*layers)


def build(arch, c):
    if arch == "linear":
        return seq(("flatten", nn.Flatten()), ("fc1", nn.Linear(c * SIZE * SIZE, 2)))
    if arch == "mlp":
        return seq(("flatten", nn.Flatten()), ("fc1", nn.Linear(c * SIZE * SIZE, MLP_HIDDEN)),
                   ("relu1", nn.ReLU()), ("fc2", nn.Linear(MLP_HIDDEN, 2)))
    if arch == "cnn_maxpool":
        return cnn(c, "max", 1)
    if arch == "cnn_valid":
        return cnn(c, "max", 0)
    if arch == "cnn_avgpool":
        return cnn(c, "avg", 1)
    if arch == "cnn_bn":
        return cnn(c, "max", 1, bn=True)
    if arch == "single_output":
        return cnn(c, "max", 1, outputs=1)
    raise ValueError(arch)


def predict(model, x, single):
    out = model(x)
    return (out[:, 0] > 0).long() if single else out.argmax(1)


def accuracy(model, X, y, single):
    model.eval()
    with torch.no_grad():
        correct = 0
        for i in range(0, len(X), 500):
            correct += (predict(model, X[i:i + 500], single) == y[i:i + 500]).sum().item()
    return correct / len(X)


def train(arch, Xtr, ytr, max_epochs, target):
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    model = build(arch, Xtr.shape[1])
    single = arch == "single_output"
    loss_fn = nn.BCEWithLogitsLoss() if single else nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(SEED)
    epochs, acc = 0, 0.0
    for epoch in range(1, max_epochs + 1):
        model.train()
        perm = torch.randperm(len(Xtr), generator=gen)
        for i in range(0, len(Xtr), BATCH):
            idx = perm[i:i + BATCH]
            out = model(Xtr[idx])
            if single:
                loss = loss_fn(out[:, 0], ytr[idx].float())
            else:
                loss = loss_fn(out, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        epochs = epoch
        acc = accuracy(model, Xtr, ytr, single)
        if acc >= target:
            break
    model.eval()
    return model, epochs, acc


# ------------------------------------------------------------------ export
def export(model, c, path, meta):
    # The model is exported in eval mode (BatchNorm uses its running
    # statistics), but with TrainingMode.PRESERVE rather than EVAL: torch 1.13
    # runs its eval peephole pass, which fuses Conv+BatchNormalization, for
    # training=EVAL whatever do_constant_folding says.  PRESERVE skips that
    # pass and keeps the model's own (eval) mode, so the BatchNormalization
    # nodes stay in the graph for geolrp to fold.
    model.eval()
    buf = io.BytesIO()
    dummy = torch.zeros(1, c, SIZE, SIZE)
    torch.onnx.export(model, dummy, buf, opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                      training=torch.onnx.TrainingMode.PRESERVE,
                      do_constant_folding=False)
    om = onnx.load_from_string(buf.getvalue())
    om.producer_name = "geolrp " + SCRIPT
    del om.metadata_props[:]
    for k, v in meta.items():
        p = om.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(om)
    onnx.save(om, path)
    re = onnx.load(path)
    onnx.checker.check_model(re)
    assert {p.key: p.value for p in re.metadata_props} == meta
    return sorted({n.op_type for n in re.graph.node})


def verify(geolrp, path, arch, model, Xte_np, count, tmp):
    """Returns a list of problems (empty when all checks pass)."""
    problems = []
    ops = {n.op_type for n in onnx.load(path).graph.node}
    if "Softmax" in ops:
        problems.append("Softmax in graph")
    if arch == "cnn_bn" and "BatchNormalization" not in ops:
        problems.append("BatchNormalization folded by torch.onnx.export")
    r = subprocess.run([geolrp, "info", path], capture_output=True, text=True)
    if r.returncode != 0:
        problems.append("geolrp info exit %d: %s" % (r.returncode, r.stderr.strip()))
    x = np.ascontiguousarray(Xte_np[:count])
    xp = os.path.join(tmp, "verify_X.npy")
    rp = os.path.join(tmp, "verify_R.npy")
    sp = os.path.join(tmp, "verify_S.npy")
    np.save(xp, x)
    r = subprocess.run([geolrp, "relevance", "--model", path, "--input", xp,
                        "--output", rp, "--scores", sp, "--overwrite", "-q"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        problems.append("geolrp relevance exit %d: %s" % (r.returncode, r.stderr.strip()))
        return problems, None
    s = np.load(sp)
    with torch.no_grad():
        t = model(torch.from_numpy(x)).numpy()
    if s.shape != t.shape:
        problems.append("scores shape %s, torch %s" % (s.shape, t.shape))
        return problems, None
    diff = float(np.abs(s.astype(np.float64) - t).max())
    if not diff <= TOL:
        bad = np.argwhere(np.abs(s - t) > TOL)
        problems.append("scores differ from torch by up to %.3g (%d of %d values > %g; "
                        "first sample %d: geolrp %s torch %s)"
                        % (diff, len(bad), s.size, TOL, bad[0][0], s[bad[0][0]], t[bad[0][0]]))
    rel = np.load(rp)
    if rel.shape != x.shape or not np.isfinite(rel).all():
        problems.append("relevance shape %s or non-finite values" % (rel.shape,))
    return problems, diff


# ------------------------------------------------------------------ data
def snapshot_geolrp(geolrp, tmp, tries=40, wait=3.0):
    """Copy the geolrp binary into tmp and use the copy for the whole run:
    build/geolrp may be relinked by a concurrent build while we train.
    Retries while the binary is missing or does not run (build in progress)."""
    dst = os.path.join(tmp, "geolrp")
    for i in range(tries):
        try:
            shutil.copy2(geolrp, dst)
            r = subprocess.run([dst, "synth", "--help"], capture_output=True)
            if r.returncode == 0:
                return dst
            why = "exit %d" % r.returncode
        except OSError as e:
            why = str(e)
        log("geolrp at %s not usable (%s), retrying in %.0f s" % (geolrp, why, wait))
        time.sleep(wait)
    sys.exit("geolrp at %s did not become usable" % geolrp)


def synth(geolrp, out, variant, count, seed):
    d = os.path.join(out, "%s_seed%d" % (variant, seed))
    subprocess.run([geolrp, "synth", "-o", d, "--variant", variant, "--count",
                    str(count), "--seed", str(seed), "--geotiff", "0", "-q"],
                   check=True)
    X = np.load(os.path.join(d, "X.npy"))
    y = np.load(os.path.join(d, "labels.npy"))
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    assert X.dtype == np.float32 and X.shape[0] == count and X.shape[2:] == (SIZE, SIZE)
    return X, y.astype(np.int64), meta


# ------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--geolrp", default=os.path.join(REPO, "build", "geolrp"))
    ap.add_argument("--out", default=os.path.join(REPO, "data", "models", "zoo"))
    ap.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    ap.add_argument("--archs", nargs="+", default=ARCHS, choices=ARCHS)
    ap.add_argument("--train-count", type=int, default=TRAIN_COUNT)
    ap.add_argument("--test-count", type=int, default=TEST_COUNT)
    ap.add_argument("--max-epochs", type=int, default=MAX_EPOCHS,
                    help="epoch budget of the CNNs (default %d)" % MAX_EPOCHS)
    ap.add_argument("--max-epochs-dense", type=int, default=MAX_EPOCHS_DENSE,
                    help="epoch budget of linear and mlp (default %d)" % MAX_EPOCHS_DENSE)
    ap.add_argument("--target-acc", type=float, default=TARGET_ACC)
    ap.add_argument("--verify-count", type=int, default=64,
                    help="test samples compared with geolrp relevance --scores (default 64)")
    ap.add_argument("--no-verify", action="store_true")
    args = ap.parse_args()

    geolrp_src = os.path.abspath(args.geolrp)
    if not os.path.exists(geolrp_src):
        sys.exit("geolrp not found at %s (build it: cmake -S . -B build "
                 "-DCMAKE_BUILD_TYPE=Release && cmake --build build -j2)" % geolrp_src)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)

    zoo_path = os.path.join(args.out, "zoo.json")
    old = []
    if os.path.exists(zoo_path):
        with open(zoo_path) as f:
            prev = json.load(f)
        if (prev.get("train", {}).get("count") == args.train_count
                and prev.get("test", {}).get("count") == args.test_count):
            old = prev.get("models", [])

    rows, failures = [], []
    t_all = time.time()
    with tempfile.TemporaryDirectory(prefix="geolrp_zoo_") as tmp:
        geolrp = snapshot_geolrp(geolrp_src, tmp)
        for variant in args.variants:
            Xtr, ytr, gmeta = synth(geolrp, tmp, variant, args.train_count, TRAIN_SEED)
            Xte, yte, _ = synth(geolrp, tmp, variant, args.test_count, TEST_SEED)
            c = Xtr.shape[1]
            Xtr_t, ytr_t = torch.from_numpy(Xtr), torch.from_numpy(ytr)
            Xte_t, yte_t = torch.from_numpy(Xte), torch.from_numpy(yte)
            for arch in args.archs:
                budget = (args.max_epochs_dense if arch in ("linear", "mlp")
                          else args.max_epochs)
                t0 = time.time()
                model, epochs, train_acc = train(arch, Xtr_t, ytr_t, budget,
                                                 args.target_acc)
                secs = time.time() - t0
                test_acc = accuracy(model, Xte_t, yte_t, arch == "single_output")
                name = "%s__%s.onnx" % (variant, arch)
                path = os.path.join(args.out, name)
                training = {"script": SCRIPT, "seed": SEED, "epochs": epochs,
                            "optimizer": "Adam", "lr": LR, "batch": BATCH,
                            "loss": "BCEWithLogitsLoss" if arch == "single_output"
                            else "CrossEntropyLoss",
                            "stop": "train accuracy >= %g or %d epochs"
                            % (args.target_acc, budget),
                            "train_accuracy": round(train_acc, 4),
                            "data": "geolrp synth --variant %s --seed %d --count %d"
                            % (variant, TRAIN_SEED, args.train_count),
                            "generator": gmeta.get("generator", "geolrp synth")}
                meta = {"class_names": CLASS_NAMES, "variant": variant,
                        "architecture": arch, "test_accuracy": "%.4f" % test_acc,
                        "training": json.dumps(training)}
                ops = export(model, c, path, meta)
                nparams = sum(p.numel() for p in model.parameters())
                entry = {"variant": variant, "architecture": arch, "file": name,
                         "test_accuracy": round(test_acc, 4), "parameters": nparams,
                         "epochs": epochs, "train_seconds": round(secs, 2)}
                status = "-"
                if not args.no_verify:
                    problems, diff = verify(geolrp, path, arch, model, Xte,
                                            args.verify_count, tmp)
                    status = "ok (max diff %.1e)" % diff if not problems else "FAIL"
                    for p in problems:
                        failures.append("%s: %s" % (name, p))
                rows.append(entry)
                log("%-10s %-14s epochs %2d  train %.4f  test %.4f  %6.1fs  %7d params "
                    "%7d bytes  verify %s" % (variant, arch, epochs, train_acc, test_acc,
                                              secs, nparams, os.path.getsize(path), status))
                if arch == "cnn_bn":
                    log("           ops:", " ".join(ops))
    total = time.time() - t_all

    done = {(r["variant"], r["architecture"]) for r in rows}
    models = [m for m in old if (m["variant"], m["architecture"]) not in done] + rows
    order = {(v, a): i for i, (v, a) in enumerate((v, a) for v in VARIANTS for a in ARCHS)}
    models.sort(key=lambda m: order.get((m["variant"], m["architecture"]), 1 << 30))
    zoo = {"generator": "geolrp synth",
           "train": {"seed": TRAIN_SEED, "count": args.train_count},
           "test": {"seed": TEST_SEED, "count": args.test_count},
           "models": models}
    with open(zoo_path, "w") as f:
        json.dump(zoo, f, indent=2)
        f.write("\n")

    # accuracy table (variant x architecture), all models in zoo.json
    acc = {(m["variant"], m["architecture"]): m["test_accuracy"] for m in models}
    archs = [a for a in ARCHS if any(k[1] == a for k in acc)]
    log("\nTest accuracy (seed %d, %d samples)" % (TEST_SEED, args.test_count))
    log("| variant | " + " | ".join(archs) + " |")
    log("|---|" + "---|" * len(archs))
    for v in VARIANTS:
        if any(k[0] == v for k in acc):
            log("| %s | " % v + " | ".join("%.3f" % acc[(v, a)] if (v, a) in acc else "-"
                                           for a in archs) + " |")
    log("\ntrained %d models in %.1f s (training alone %.1f s); zoo.json: %s"
        % (len(rows), total, sum(r["train_seconds"] for r in rows), zoo_path))
    if failures:
        log("\nVERIFICATION FAILURES:")
        for f in failures:
            log("  " + f)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
