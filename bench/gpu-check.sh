#!/bin/bash
# One call on a GPU machine: build the engine and the CUDA kernels (engine-only: the machine has
# CUDA, CMake and a compiler but none of our Debian packages; .deps/ from scripts/gather-deps.sh
# travels with the tree), run the CUDA test harness (every op against the CPU reference, then the
# backend end to end), check and time the CPU's AVX-512 / AMX kernels where the machine's CPU has
# them (test_engine [matmul],[attention], bench_matmul, and bench_cpu end to end on the 1.5B shape
# with 2 threads, the issue's llama.cpp comparison), and benchmark (bench_gpu). The table comes last;
# details go to OUT_DIR.
#
#   bench/gpu-check.sh OUT_DIR [--quick]
#
# Times on an H200 (16 cores): build ~3-4 min (sm_90a only), tests ~1 min, CPU kernels ~1-2 min and
# end to end ~1.5 min (estimates: not yet run there), benchmark ~4 min (--quick: less).
set -u
out=${1:?usage: bench/gpu-check.sh OUT_DIR [--quick]}
shift
mkdir -p "$out"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$(date +%s)
step() { echo "== $(($(date +%s) - start)) s: $*"; }

step "device"
nvidia-smi --query-gpu=name,memory.total,memory.used,clocks.sm,clocks.mem,power.limit --format=csv | tee "$out/nvidia-smi.csv"

step "configure"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
shared="$root/../shared"
[ -d "$root/shared" ] && shared="$root/shared"
prefix=()
[ -d .deps ] && prefix=(-DCMAKE_PREFIX_PATH="$root/.deps")
cmake -S . -B build-gpu "${gen[@]}" "${prefix[@]}" -DPONDER_ENGINE_ONLY=ON -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES=90a -DPONDER_SHARED_DIR="$shared" >"$out/configure.log" 2>&1 ||
  { tail -30 "$out/configure.log"; exit 1; }

step "build"
cmake --build build-gpu -j"$(nproc)" --target test_cuda test_engine bench_gpu bench_matmul bench_cpu make_test_model >"$out/build.log" 2>&1 ||
  { grep -E "error|Error" "$out/build.log" | head -40; exit 1; }

step "test_cuda (CUDA against the CPU reference)"
# Time limits per phase, so that a hung kernel cannot spend the whole lease (override: T_TESTS, T_BENCH).
timeout "${T_TESTS:-240}" build-gpu/test_cuda --reporter compact --durations yes >"$out/test_cuda.log" 2>&1
tests_rc=$?
tail -5 "$out/test_cuda.log"
grep -E "FAILED|failed" "$out/test_cuda.log" | head -20

step "test_engine [cuda] (host side and the CUDA RMSNorm plumbing)"
timeout 120 build-gpu/test_engine "[cuda],[cuda_blocks],[cuda_plan],[cuda_host_math],[cuda_emulated]" --reporter compact >"$out/test_engine_cuda.log" 2>&1
tail -3 "$out/test_engine_cuda.log"

step "cpu kernels: AVX-512 and AMX where this CPU has them (emulated in the tests where not)"
grep -o -w -E 'avx512f|avx512_vnni|avx512_bf16|amx_tile|amx_int8|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ' |
  tee "$out/cpu_flags.txt"
echo
timeout 180 build-gpu/test_engine "[matmul],[attention]" --reporter compact >"$out/test_matmul.log" 2>&1
tail -2 "$out/test_matmul.log"
for isa in avx2 avx512 amx; do
  timeout 60 build-gpu/bench/bench_matmul --isa $isa --threads 16 --passes 3 --prefill-passes 2 \
    --types f16,bf16,q8_0,q4_0,q4_K,q6_K >"$out/bench_matmul_$isa.log" 2>&1
  grep -E "^isa|^read|^type|x[0-9]+ +[0-9]+ " "$out/bench_matmul_$isa.log" | head -16
done

step "cpu end to end: R1-Distill-Qwen-1.5B shape, 2 threads, per path (issue 4's llama.cpp pp512: F16 67, Q8_0 187 t/s)"
# Random weights of the real shape, written to /tmp (not $out: gigabytes), one type at a time.
for type in q8_0 f16; do
  model=/tmp/ponder-r1-1.5b-$type.gguf
  timeout 120 build-gpu/make_test_model --arch qwen2 --shape r1-qwen-1.5b --type $type --out "$model" >/dev/null 2>&1 ||
    { echo "make_test_model $type failed"; continue; }
  for isa in avx2 avx512 amx; do
    PONDER_CPU_ISA=$isa timeout 90 build-gpu/bench/bench_cpu --model "$model" -p 512 -n 16 -t 2 2>&1 |
      tee -a "$out/bench_cpu.log"
  done
  rm -f "$model"
done

step "bench_gpu"
timeout "${T_BENCH:-300}" build-gpu/bench/bench_gpu --out "$out/bench" "$@" 2>&1 | tee "$out/bench.log" | grep -v "^|" 
step "done (test_cuda exit $tests_rc; 124 = timed out)"
echo
sed -n '/^| test /,$p' "$out/bench.log"
