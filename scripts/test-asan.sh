#!/usr/bin/env bash
# Builds with AddressSanitizer + UndefinedBehaviorSanitizer (the `asan` preset, in build-asan/)
# and runs the whole test suite under it. Kept out of CI for time; run it before merging changes
# to parsing, caching or anything that handles untrusted input.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
cmake --preset asan
cmake --build --preset asan -j"$(nproc)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --preset asan -j"$(nproc)"
