#!/bin/bash
# One call on a GPU machine: build the engine and the CUDA kernels (engine-only: the machine has
# CUDA, CMake and a compiler but none of our Debian packages; .deps/ from scripts/gather-deps.sh
# travels with the tree) or use the ones scripts/gpu-prebuild.sh packed here (.gpubin/, when they
# start there), run the CUDA test harness (every op against the CPU reference, then the backend end
# to end), check and time the CPU's AVX-512 / AMX kernels where the machine's CPU has them
# (test_engine [matmul],[attention], bench_matmul, and bench_cpu end to end on the 1.5B shape with
# 2 threads, the issue's llama.cpp comparison), and benchmark (bench_gpu). The table comes last;
# details go to OUT_DIR.
#
#   bench/gpu-check.sh OUT_DIR [bench_gpu's options: --quick, --max-prefill-s S]
#
# SKIP="cpu-e2e bench ..." leaves phases out (tests, cuda-host, cpu, cpu-e2e, bench); PROFILE=1
# adds an ncu profile of two decode steps, per kernel (not yet run there); T_TESTS, T_BENCH and
# T_PROFILE bound the CUDA tests, bench_gpu and the profile (seconds).
#
# Times on an H200 (16 cores), 2026-11-30, with the pack: test_cuda 128 s, host tests 2 s, CPU
# kernels 40 s, CPU end to end 73 s, bench_gpu 28 s with --max-prefill-s 60 (which skips the
# 128K prefill, projected ~255 s): 272 s in all. Building there instead: ~3-4 min more (estimate).
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

skip() { [[ " ${SKIP:-} " == *" $1 "* ]]; }
shared="$root/../shared"
[ -d "$root/shared" ] && shared="$root/shared"
bin=build-gpu
if [ -f .gpubin/bins.tar.xz ]; then
  step "packed programs (.gpubin, scripts/gpu-prebuild.sh)"
  bin=build-pack
  rm -rf $bin && mkdir -p $bin && tar -C $bin -xJf .gpubin/bins.tar.xz
  export LD_LIBRARY_PATH="$root/$bin/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "built at $(cat $bin/commit)"
  [ -d "$shared/testdata" ] || shared="$root/$bin/shared"
  # (Catch2's --list-tests exits with the number of tests: look at what it prints instead.)
  if ! { $bin/test_cuda --list-tests 2>&1 | grep -q "test cases" && $bin/test_engine --list-tests 2>&1 | grep -q "test cases"; }; then
    echo "the packed programs do not start here: building"
    $bin/test_cuda --list-tests 2>&1 | head -3
    bin=build-gpu
  fi
fi
# The test data path the programs are built with (scripts/gpu-prebuild.sh uses the same).
ln -sfn "$shared" /tmp/ponder-gpu-shared
if [ $bin = build-gpu ]; then
  step "configure"
  gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  prefix=()
  [ -d .deps ] && prefix=(-DCMAKE_PREFIX_PATH="$root/.deps")
  cmake -S . -B build-gpu "${gen[@]}" "${prefix[@]}" -DPONDER_ENGINE_ONLY=ON -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=90a -DPONDER_SHARED_DIR=/tmp/ponder-gpu-shared >"$out/configure.log" 2>&1 ||
    { tail -30 "$out/configure.log"; exit 1; }

  step "build"
  cmake --build build-gpu -j"$(nproc)" --target test_cuda test_engine bench_gpu bench_matmul bench_cpu make_test_model >"$out/build.log" 2>&1 ||
    { grep -E "error|Error" "$out/build.log" | head -40; exit 1; }
fi

tests_rc=skipped
if ! skip tests; then
  step "test_cuda (CUDA against the CPU reference)"
  # Time limits per phase, so that a hung kernel cannot spend the whole lease.
  timeout "${T_TESTS:-240}" $bin/test_cuda --reporter compact --durations yes >"$out/test_cuda.log" 2>&1
  tests_rc=$?
  tail -5 "$out/test_cuda.log"
  grep -E -B3 -A12 "FAILED|failed" "$out/test_cuda.log" | head -120
fi

if ! skip cuda-host; then
  step "test_engine [cuda] (host side and the CUDA RMSNorm plumbing; the emulated kernels run in CI)"
  timeout 120 $bin/test_engine "[cuda],[cuda_blocks],[cuda_plan],[cuda_host_math]" --reporter compact >"$out/test_engine_cuda.log" 2>&1
  tail -3 "$out/test_engine_cuda.log"
fi

if ! skip cpu; then
  step "cpu kernels: AVX-512 and AMX where this CPU has them (emulated in the tests where not)"
  lscpu | grep -E "Model name|^CPU\(s\)" | tee "$out/cpu.txt"
  grep -o -w -E 'avx512f|avx512_vnni|avx512_bf16|amx_tile|amx_int8|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ' |
    tee -a "$out/cpu.txt"
  echo
  timeout 180 $bin/test_engine "[matmul],[attention]" --reporter compact >"$out/test_matmul.log" 2>&1
  grep -E "matmul paths here|FAILED|failed" "$out/test_matmul.log" | head -20
  tail -2 "$out/test_matmul.log"
  for isa in ${CPU_ISAS:-avx512 amx}; do
    timeout 60 $bin/bench/bench_matmul --isa $isa --threads 2 --passes 3 --prefill-passes 2 \
      --types f16,bf16,q8_0,q4_K,q6_K >"$out/bench_matmul_$isa.log" 2>&1
    grep -E "^isa|^read|^type|x[0-9]+ +[0-9]+ " "$out/bench_matmul_$isa.log" | head -16
  done
fi

if ! skip cpu-e2e; then
  step "cpu end to end: R1-Distill-Qwen-1.5B shape, 2 threads, per path (issue 4's llama.cpp pp512: F16 67, Q8_0 187, Q4_K_M 122 t/s)"
  # Random weights of the real shape, written to /tmp (not $out: gigabytes), one type at a time.
  for type in q8_0 f16 q4_K_M bf16; do  # bf16: the one type with an AMX kernel (amx_takes)
    model=/tmp/ponder-r1-1.5b-$type.gguf
    timeout 120 $bin/make_test_model --arch qwen2 --shape r1-qwen-1.5b --type $type --out "$model" >/dev/null 2>&1 ||
      { echo "make_test_model $type failed"; continue; }
    for isa in ${CPU_ISAS:-avx512 amx}; do
      PONDER_CPU_ISA=$isa timeout 90 $bin/bench/bench_cpu --model "$model" -p 512 -n 16 -t 2 2>&1 |
        tee -a "$out/bench_cpu.log"
    done
    rm -f "$model"
  done
fi

if ! skip bench; then
  step "bench_gpu"
  timeout "${T_BENCH:-300}" $bin/bench/bench_gpu --out "$out/bench" "$@" 2>&1 | tee "$out/bench.log" | grep -v "^|"
fi
if [ -n "${PROFILE:-}" ]; then
  # Where a decode step's time goes, kernel by kernel: ncu on two graph-replayed steps of the 1.5B
  # Q8_0 and the 7B BF16 (bench_gpu --profile-decode marks them with an NVTX range), their time
  # and DRAM throughput, summed per kernel name. Off unless PROFILE=1 (ncu replays each kernel).
  step "ncu: two decode steps, per kernel"
  timeout "${T_PROFILE:-240}" ncu --clock-control none --nvtx --nvtx-include "decode/" \
    --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__throughput.avg.pct_of_peak_sustained_elapsed \
    --print-summary per-kernel $bin/bench/bench_gpu --profile-decode --out "$out/profile" >"$out/ncu.log" 2>&1
  echo "ncu exit $?"
  grep -v "^==PROF==" "$out/ncu.log" | tail -80
fi
step "done (test_cuda exit $tests_rc; 124 = timed out)"
echo
[ -f "$out/bench.log" ] && sed -n '/^| test /,$p' "$out/bench.log"
exit 0
