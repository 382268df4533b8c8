#!/bin/bash
# Builds bench/gpu-check.sh's programs here (engine-only, Release, sm_90a only) and packs them,
# stripped, into .gpubin/bins.tar.xz (ignored by git, ~10 MB), with libutf8proc and the one test
# data file the CUDA host tests read, so that the GPU machine skips its own build (3-4 minutes of
# a 15-minute lease). gpu-check.sh uses the pack when its programs start there, and builds from
# .deps/ (scripts/gather-deps.sh, run here too) when they do not. Carry both:
#   run(command="bench/gpu-check.sh /tmp/o ...", carry=[".gpubin", ".deps"])
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/gather-deps.sh
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
# The test data path compiled in is neutral; gpu-check.sh links it to the shared/ it finds.
cmake -S . -B build-gpu "${gen[@]}" -DCMAKE_PREFIX_PATH="$root/.deps" -DPONDER_ENGINE_ONLY=ON \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DPONDER_SHARED_DIR=/tmp/ponder-gpu-shared >/dev/null
cmake --build build-gpu -j"$(nproc)" --target test_cuda test_engine bench_gpu bench_matmul bench_cpu make_test_model
stage=$(mktemp -d)
mkdir -p "$stage/bench" "$stage/lib" "$stage/shared/testdata"
for f in test_cuda test_engine make_test_model bench/bench_gpu bench/bench_cpu bench/bench_matmul; do
  strip -o "$stage/$f" "build-gpu/$f"
done
cp -a .deps/lib/libutf8proc.so* "$stage/lib/"
cp ../shared/testdata/quant_known_answers.gguf "$stage/shared/testdata/"
git rev-parse HEAD >"$stage/commit"
git status --porcelain --untracked-files=no | grep -q . && echo "(with uncommitted changes)" >>"$stage/commit"
mkdir -p .gpubin
tar -C "$stage" -cJf .gpubin/bins.tar.xz .
rm -rf "$stage"
ls -la .gpubin/bins.tar.xz
