#!/bin/bash
# ponder's CPU backend against llama.cpp on the same GGUF files, on this machine: pp512 and tg128
# with 2 threads (the issue's comparison), the two programs in turn, ROUNDS times, so that both
# see the same minutes of a noisy VM. llama.cpp is node-llama-cpp's prebuilt CPU build
# (tests/llamacpp, installed by scripts/setup.sh): it picks its kernels for the CPU at run time
# and prints which. The models are generated with the real R1-Distill-Qwen-1.5B shape.
#
#   bench/llamacpp.sh [BUILD_DIR] [ROUNDS]     (defaults: build, 3)
#
# PONDER_BENCH_TYPES="f16 q8_0" runs only those types (default: f16 q8_0 q4_K_M).
#
# Per round and type: one llama.cpp run (a warm-up, then pp and tg) and one bench_cpu run. The
# table at the end has the medians over the rounds and their ratio. ~25 min with 3 rounds here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
rounds=${2:-3}
models=${PONDER_BENCH_MODELS:-/tmp/ponder-bench-models}
types=${PONDER_BENCH_TYPES:-f16 q8_0 q4_K_M}
mkdir -p "$models"
[ -d "$root/tests/llamacpp/node_modules/node-llama-cpp" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
for t in $types; do
  f="$models/r1-qwen-1.5b-$t.gguf"
  [ -f "$f" ] || "$build/make_test_model" --arch qwen2 --shape r1-qwen-1.5b --type "$t" --out "$f" >/dev/null
done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The last line of each program, checked before its fields are read.
num='[0-9]+(\.[0-9]+)?'
for r in $(seq "$rounds"); do
  for t in $types; do
    f="$models/r1-qwen-1.5b-$t.gguf"
    l=$(node "$root/tests/llamacpp/llama.mjs" bench "$f" -p 512 -n 128 -t 2 -r 1 | tail -1)
    [[ $l =~ ^llama\.cpp\ +threads\ 2\ +pp512\ $num\ t/s\ +tg128\ $num\ t/s ]] ||
      { echo "llama.mjs bench: unexpected output: $l" >&2; exit 1; }
    p=$("$build/bench/bench_cpu" --model "$f" -p 512 -n 128 -t 2 | tail -1)
    [[ $p =~ ^cpu\ [a-z0-9]+\ +[A-Za-z0-9_]+\ +threads\ 2\ +pp512\ +$num\ t/s\ +tg128\ +$num\ t/s ]] ||
      { echo "bench_cpu: unexpected output: $p" >&2; exit 1; }
    echo "round $r $t | $l | $p"
    echo "$t $(echo "$l" | awk '{print $5, $8}') $(echo "$p" | awk '{print $7, $10}')" >>"$log"
  done
done
echo
echo "type    llama.cpp pp512  tg128 | ponder pp512  tg128 | ratio pp  tg   (medians of $rounds rounds)"
for t in $types; do
  grep "^$t " "$log" | awk -v t="$t" '
    { lp[NR] = $2; lt[NR] = $3; pp[NR] = $4; pt[NR] = $5 }
    function med(a, n,   i, j, x) {
      for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
      a = med(lp, NR); b = med(lt, NR); c = med(pp, NR); d = med(pt, NR)
      printf "%-7s %15.2f %6.2f | %12.2f %6.2f | %8.2f %4.2f\n", t, a, b, c, d, c / a, d / b
    }'
done
