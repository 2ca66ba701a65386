#!/bin/sh
# Installs every Debian package geolrp needs to build, run and test.
# Debian 12 (bookworm). Run as root (or through sudo). Safe to run twice.
set -eu

BUILD="build-essential cmake pkg-config git ca-certificates
       protobuf-c-compiler libprotobuf-c-dev libonnx-dev
       libopenblas-dev libgdal-dev libproj-dev libtiff-dev libjansson-dev libssl-dev"
RUN="gdal-bin"
# slurm-wlm and munge: tests/slurm starts a private one-node Slurm (ctest slurm_local)
TEST="python3 python3-numpy python3-torch python3-onnx python3-gdal slurm-wlm munge
      valgrind cppcheck clang-tidy mount util-linux"
# libFuzzer: clang, and its runtime (libclang_rt.fuzzer), which bookworm's clang only
# recommends.
FUZZ="clang libclang-rt-14-dev"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $BUILD $RUN $TEST $FUZZ
