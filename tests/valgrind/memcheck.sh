#!/bin/sh
# valgrind memcheck on a small `geolrp explain` (ctest: valgrind_explain; Release build):
# fails on any invalid read or write, use of uninitialised memory, or definite leak.
# "Still reachable" memory (GDAL's and OpenBLAS's caches held until exit) is not a leak.
# Usage: sh tests/valgrind/memcheck.sh GEOLRP SOURCE_DIR
#
# OpenBLAS picks its kernels from the CPU; valgrind 3.19 does not decode AVX-512, so on a
# CPU that has it the Haswell (AVX2) kernels are forced (OPENBLAS_CORETYPE; Debian's
# OpenBLAS is built with DYNAMIC_ARCH). Elsewhere OpenBLAS chooses as usual.
set -eu
geolrp=$1
src=$2
command -v valgrind >/dev/null || { echo "valgrind is not installed (scripts/install-deps.sh)"; exit 1; }
command -v gdal_translate >/dev/null || { echo "gdal_translate is not installed"; exit 1; }
if grep -q avx512f /proc/cpuinfo 2>/dev/null; then
    export OPENBLAS_CORETYPE=Haswell
    echo "AVX-512 CPU: OPENBLAS_CORETYPE=Haswell for valgrind"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# 64 x 48 pixels of the shipped scene: 15 tiles of the shipped model, every output.
gdal_translate -q -srcwin 250 200 64 48 -co TILED=YES -co BLOCKXSIZE=32 -co BLOCKYSIZE=32 \
    "$src/data/landsat8/LC80200392015216_10band.tif" "$tmp/scene.tif"
valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --track-origins=yes --num-callers=30 \
    "$geolrp" explain "$tmp/scene.tif" -m "$src/data/models/landsat8_cloud.onnx" \
    -o "$tmp/rel.tif" --class-map "$tmp/classes.tif" --scores "$tmp/scores.tif" \
    --report "$tmp/run.json" -q
# valgrind's exit code is geolrp's when it finds nothing: the run itself must succeed too.
for f in rel.tif classes.tif scores.tif run.json; do
    test -s "$tmp/$f" || { echo "no output $f"; exit 1; }
done
echo "valgrind memcheck: clean"
