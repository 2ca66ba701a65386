#!/bin/sh
# cppcheck on src/ with the compile commands of a build (ctest: static_cppcheck).
# Usage: sh tests/static/cppcheck.sh SOURCE_DIR BUILD_DIR
#
# - the generated protobuf-c bindings (BUILD_DIR/generated) are not ours: not checked;
# - cppcheck does not read system headers, so the version check of the generated onnx.pb-c.h
#   would hit its #error and skip every file that includes it: protobuf-c.h, which defines
#   the version, is included up front instead;
# - checks: errors plus warning, performance, portability ("style" is a matter of taste).
# Any finding fails the test. Suppress a proven false positive inline, next to the code:
#   /* cppcheck-suppress ID ; why */
set -eu
src=$1
build=$2
command -v cppcheck >/dev/null || { echo "cppcheck is not installed (scripts/install-deps.sh)"; exit 1; }
test -f "$build/compile_commands.json" || { echo "no $build/compile_commands.json"; exit 1; }
cppcheck --version
cd "$src"
exec cppcheck --project="$build/compile_commands.json" \
    -i "$build/generated" -i "$src/tests" \
    --include=/usr/include/protobuf-c/protobuf-c.h \
    --enable=warning,performance,portability --inline-suppr \
    --error-exitcode=1 --quiet -j "$(nproc)"
