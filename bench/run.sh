#!/bin/sh
# The performance benchmark of docs/benchmarks.md, in one command:
#   sh bench/run.sh [WORKDIR] [--no-scene]
# 1. engine: OpenBLAS sgemm peak, geolrp forward and LRP tiles/s (three composites) and
#    PyTorch's CPU forward of the same model on the same tiles, 1 and 2 threads, batch 32,
#    medians of repeated runs (bench/engine_bench.c, bench/torch_forward.py);
# 2. end to end: geolrp explain on a 4096 x 4096 x 13 scene made with GDAL from the
#    Sentinel-2 sample, 1 and 2 threads (bench/scene_bench.sh).
# Prints Markdown tables. Needs a Release build in build/ (README). Never asserted in tests:
# run it on an otherwise idle machine.
set -eu
cd "$(dirname "$0")/.."
work=${1:-/tmp/geolrp-bench}
scene_too=1
[ "${2:-}" = "--no-scene" ] && scene_too=0
mkdir -p "$work"
src=../shared/data/sentinel2/S2_19UDP_20170729_13band_160m_512.tif
[ -f "$src" ] || src=data/sentinel2/S2_19UDP_20170729_13band_160m_512.tif
[ -f "$work/bench_model.onnx" ] || /usr/bin/python3 bench/make_model.py "$work/bench_model.onnx" >/dev/null
[ -f "$work/tiles.npy" ] || /usr/bin/python3 bench/make_tiles.py "$src" "$work/tiles.npy" 32
[ -x build/engine_bench ] || { echo "bench/run.sh: build first (cmake --build build)" >&2; exit 2; }

: > "$work/engine.jsonl"
for t in 1 2; do
    build/engine_bench "$work/bench_model.onnx" "$work/tiles.npy" --threads "$t" --batch 32 \
        --reps 7 --min-seconds 3 --composite epsilon-plus-flat --composite epsilon-gamma-box \
        --composite epsilon-alpha2-beta1 >> "$work/engine.jsonl"
    OMP_NUM_THREADS=$t /usr/bin/python3 bench/torch_forward.py "$work/tiles.npy" --threads "$t" \
        --batch 32 --reps 7 --min-seconds 3 >> "$work/engine.jsonl"
done
/usr/bin/python3 bench/report.py "$work/engine.jsonl"
if [ "$scene_too" = 1 ]; then
    echo
    sh bench/scene_bench.sh "$work" 4096 64
fi
