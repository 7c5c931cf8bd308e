#!/usr/bin/env bash
# Installs what kiln needs to build and test, then configures and builds it.
# Safe to run twice: installed packages, the venv and the build are reused.
#
#   scripts/setup.sh            # deps + build (build/)
#   KILN_BUILD_DIR=... scripts/setup.sh
#
# Debian packages: LLVM/MLIR 22, clang/lld 22, ninja, ccache, protobuf, gtest,
# and for the runtime's tokenizer nlohmann-json (reads tokenizer.json) and
# PCRE2 (its Unicode pre-tokenizer regexes), CLI11 for the `kiln` tool,
# pkgconf (finds PCRE2; tests the installed kiln.pc).
# Python (test-only: onnx for onnx.proto and the text parser, onnxruntime and
# tokenizers as references, numpy) goes into a venv under
# ${KILN_CACHE:-~/.cache/kiln}.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KILN_CACHE:-$HOME/.cache/kiln}"
VENV="$CACHE/venv"
BUILD="${KILN_BUILD_DIR:-$ROOT/build}"

APT_PACKAGES=(llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools clang-22 lld-22 clang-format-22
              cmake ninja-build ccache protobuf-compiler libprotobuf-dev libgtest-dev
              nlohmann-json3-dev libpcre2-dev libcli11-dev libcpp-httplib-dev pkgconf python3-venv time)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating venv $VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import onnx, onnxruntime, numpy, tokenizers" 2>/dev/null ||
   ! cmp -s "$ROOT/scripts/requirements-test.txt" "$VENV/.kiln-requirements"; then
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/scripts/requirements-test.txt"
  cp "$ROOT/scripts/requirements-test.txt" "$VENV/.kiln-requirements"
fi

if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -G Ninja -S "$ROOT" -B "$BUILD" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
    -DCMAKE_EXE_LINKER_FLAGS=-fuse-ld=lld -DCMAKE_SHARED_LINKER_FLAGS=-fuse-ld=lld \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit \
    -DKILN_PYTHON="$VENV/bin/python"
fi
# Two cores: -j2. ccache makes rebuilds from a fresh clone cheap; a base dir
# makes its hashes independent of where the clone lives.
export CCACHE_BASEDIR="$ROOT"
ninja -C "$BUILD" -j "${KILN_JOBS:-2}"
