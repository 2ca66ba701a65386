#!/bin/sh
# The main job on the shipped default scene and model (see docs/default-model.md):
# relevance COG + class map + scores + run report, then band importance with the
# occlusion check (JSON, CSV, SVG), all into one output folder.
# Usage: sh scripts/run-default.sh [OUTDIR]   (default: out)
set -eu
cd "$(dirname "$0")/.."
out=${1:-out}
bin=build/geolrp
scene=data/landsat8/LC80200392015216_10band.tif
model=data/models/landsat8_cloud.onnx
threads=$(nproc 2>/dev/null || echo 1)
mkdir -p "$out"

$bin explain "$scene" -m "$model" -o "$out/relevance.tif" \
    --class-map "$out/classes.tif" --scores "$out/scores.tif" --report "$out/run.json" \
    --target cloud --threads "$threads" --overwrite
$bin bands "$scene" -m "$model" --json "$out/bands.json" --csv "$out/bands.csv" \
    --plot "$out/bands.svg" --occlusion --threads "$threads" --overwrite

cat <<EOT

Results in $out/:
  relevance.tif (+ .qml)   relevance of class "cloud" per pixel: band 1 total, then one band
                           per input band; open in QGIS, the style is applied
  classes.tif (+ .qml)     clear / cloud class map;  scores.tif: its probability
  run.json                 tiles, timings, class counts, conservation, rules used
  bands.json, bands.csv    band importance per class, with the occlusion check
  bands.svg                the band shares as a bar chart
EOT
