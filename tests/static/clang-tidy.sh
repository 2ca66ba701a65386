#!/bin/sh
# clang-tidy on src/ with the checked-in .clang-tidy and the compile commands of a build
# (ctest: static_clang_tidy). Every finding is an error (WarningsAsErrors in .clang-tidy).
# Usage: sh tests/static/clang-tidy.sh SOURCE_DIR BUILD_DIR
# Suppress a proven false positive inline, next to the code, with the reason:
#   // NOLINT(check-name): why
set -eu
src=$1
build=$2
tidy=$(command -v clang-tidy-14 || command -v clang-tidy || true)
runner=$(command -v run-clang-tidy-14 || command -v run-clang-tidy || true)
if [ -z "$tidy" ] || [ -z "$runner" ]; then
    echo "clang-tidy is not installed (scripts/install-deps.sh)"
    exit 1
fi
test -f "$build/compile_commands.json" || { echo "no $build/compile_commands.json"; exit 1; }
"$tidy" --version | head -2
# The last argument selects the files of the compile database: src/ only (not the
# generated protobuf-c bindings, not the tests).
exec "$runner" -clang-tidy-binary "$tidy" -p "$build" -j "$(nproc)" -quiet "^$src/src/"
