#!/bin/bash
# Copies what engine/ and kernels/ need beyond the CUDA toolkit from this machine's Debian
# packages into .deps/ (ignored by git), so that a GPU machine with CUDA, CMake and a compiler but
# none of our packages and no network can build them (PONDER_ENGINE_ONLY):
#   nlohmann/json (headers + CMake config), utf8proc (header + shared library), Catch2 v2
#   (header + CMake config, for the tests), SIMDe (headers: the tests' emulated AVX-512).
# Configure there with: -DCMAKE_PREFIX_PATH=$PWD/.deps (bench/gpu-check.sh does).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deps="$root/.deps"
rm -rf "$deps"
mkdir -p "$deps/include" "$deps/lib" "$deps/share/cmake" "$deps/lib/cmake"
cp -r /usr/include/nlohmann "$deps/include/"
cp -r /usr/share/cmake/nlohmann_json "$deps/share/cmake/"
cp /usr/include/utf8proc.h "$deps/include/"
arch_lib=/usr/lib/$(gcc -print-multiarch)
cp -a "$arch_lib"/libutf8proc.so* "$deps/lib/"
cp -r /usr/include/catch2 "$deps/include/"
cp -r /usr/lib/cmake/Catch2 "$deps/lib/cmake/"
cp /usr/lib/libCatch2WithMain.a "$deps/lib/"  # named by Catch2's CMake targets
cp -r /usr/include/simde "$deps/include/"
du -sh "$deps" | sed 's/^/gather-deps: /'
