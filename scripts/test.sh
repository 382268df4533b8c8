#!/usr/bin/env bash
# README command (2): install dependencies, build everything, run the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
cmake -S . -B build
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure -j"$(nproc)"
