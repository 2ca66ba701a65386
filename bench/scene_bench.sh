#!/bin/sh
# End-to-end benchmark of geolrp explain on a large scene made with GDAL tools from the
# Sentinel-2 sample: megapixels per second and peak RSS, for 1 and 2 threads, plus the
# memory bound check (peak RSS must follow the scene width, not its height).
# Usage: sh bench/scene_bench.sh [WORKDIR] [SIZE] [STRIDE]   (defaults /tmp/geolrp-bench 4096 64)
# Not part of the tests: timings are measured, never asserted.
set -eu
cd "$(dirname "$0")/.."
work=${1:-/tmp/geolrp-bench}
size=${2:-4096}
stride=${3:-64}
mkdir -p "$work"
src=../shared/data/sentinel2/S2_19UDP_20170729_13band_160m_512.tif
scene="$work/s2_${size}.tif"
tall="$work/s2_${size}x$((size * 2)).tif"
model="$work/bench_model.onnx"
[ -f "$model" ] || /usr/bin/python3 bench/make_model.py "$model" >/dev/null
[ -f "$scene" ] || gdal_translate -q -outsize "$size" "$size" -r bilinear -co TILED=YES \
    -co COMPRESS=DEFLATE "$src" "$scene"
[ -f "$tall" ] || gdal_translate -q -outsize "$size" "$((size * 2))" -r bilinear -co TILED=YES \
    -co COMPRESS=DEFLATE "$src" "$tall"

run() { # name scene threads
    /usr/bin/time -f "%e %M" -o "$work/time.txt" build/geolrp explain "$2" -m "$model" \
        -o "$work/out.tif" --stride "$stride" --threads "$3" --batch 32 \
        --report "$work/report.json" --overwrite -q
    set -- "$1" "$2" "$3" $(cat "$work/time.txt")
    /usr/bin/python3 - "$@" "$work/report.json" <<'PY'
import json, sys
name, scene, threads, secs, rss_kb, report = sys.argv[1:7]
r = json.load(open(report))
w, h = r['size']['width'], r['size']['height']
t = r['time_seconds']
io = t['read'] + t['mosaic'] + t['write']
print('| %s | %d x %d | %s | %d | %.1f | %.3f | %.0f | %.1f%% |' % (
    name, w, h, threads, r['tiles']['explained'], float(secs), w * h / 1e6 / float(secs),
    int(rss_kb) / 1024, 100 * io / t['explain']))
PY
}
echo "| run | size | threads | tiles | seconds | MP/s | peak RSS MiB | read+mosaic+write / LRP |"
echo "|---|---|---|---|---|---|---|---|"
run square "$scene" 1
run square "$scene" 2
run "twice as tall" "$tall" 2
