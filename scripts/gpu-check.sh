#!/usr/bin/env bash
# gpu-check.sh — the one GPU run owed by issue 9 (CUDA backend). See docs/cuda.md.
#
#   scripts/gpu-check.sh prepare      HERE (no GPU needed): builds build-cuda and
#       bundles into build-gpucheck/ (ignored by .gitignore's /build*/) the test and
#       bench binaries, the two non-system libraries they need (jansson, cmocka)
#       and the reference models (all cases but qwen2-tiny-F32, to stay under the
#       device tool's 64 MiB), so the device machine needs neither the Debian
#       -dev packages nor ../shared. Then, with the device tool:
#         run(command="scripts/gpu-check.sh core", carry=["build-gpucheck"], timeout_s=420)
#         run(command="scripts/gpu-check.sh nemo", carry=["build-gpucheck"], timeout_s=420)
#   scripts/gpu-check.sh [all|core|nemo]   ON THE GPU MACHINE:
#       core: GPU tests (device selection, conformance vs llama.cpp logits in the
#             CPU bands, eval errors), compute-sanitizer memcheck, and the
#             Qwen2.5-1.5B-shaped Q4_K_M bench (pp512/tg128 GPU next to the CPU)
#       nemo: the Mistral-Nemo-12B-shaped Q4_K_M bench (1 rep)
#       all:  both (default)
#   Uses build-gpucheck/bin when its binaries run there, else builds build-cuda from
#   source (needs nvcc, cmake and the -dev packages of scripts/install-deps.sh).
#   Results go to $OUT (default ./gpu-out): summary.txt, env.txt, build.log,
#   tests.txt, memcheck.txt, bench.txt, bench.jsonl — each written as its step
#   ends, so a timeout still returns what was done.
# env: AGX_REF_DIR, CUDACXX, GPU_CHECK_REPS (default 3), GPU_CHECK_BUILD=1 (force a source build)
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-all}
JOBS=$(nproc)
NVCC=${CUDACXX:-$(command -v nvcc || true)}
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
BINS="bench_cuda agx_gen_model test_device test_model_cuda"

build_cuda() {   # $1: log file
  cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DAGX_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" >"$1" 2>&1 &&
    cmake --build build-cuda -j"$JOBS" --target $BINS >>"$1" 2>&1
}

if [ "$MODE" = prepare ]; then
  [ -n "$NVCC" ] || { echo "prepare: no nvcc (set CUDACXX)"; exit 1; }
  REF=${AGX_REF_DIR:-../shared/ref}
  [ -f "$REF/models/manifest.json" ] || { echo "prepare: no $REF/models/manifest.json (set AGX_REF_DIR)"; exit 1; }
  echo "prepare: building build-cuda"
  build_cuda /tmp/agx-gpucheck-build.log || { tail -30 /tmp/agx-gpucheck-build.log; exit 1; }
  rm -rf build-gpucheck && mkdir -p build-gpucheck/bin build-gpucheck/lib build-gpucheck/ref/models
  for b in $BINS; do cp "build-cuda/$b" build-gpucheck/bin/; done
  for b in $BINS; do ldd "build-cuda/$b" | awk '$3 ~ /^\// {print $3}'; done | sort -u |
    grep -E 'libjansson|libcmocka' | xargs -r -I{} cp -L {} build-gpucheck/lib/
  python3 - "$REF/models" build-gpucheck/ref/models <<'PY'
import json, shutil, sys, os
src, dst = sys.argv[1], sys.argv[2]
man = json.load(open(os.path.join(src, "manifest.json")))
keep = [c for c in man["cases"] if c["name"] != "qwen2-tiny-F32"]   # 13.7 MB: the carry limit is 64 MiB
for c in keep:
    for suf in (".gguf", ".json", ".logits.f32", ".gen.logits.f32"):
        shutil.copy(os.path.join(src, c["name"] + suf), dst)
man["cases"] = keep
json.dump(man, open(os.path.join(dst, "manifest.json"), "w"), indent=1)
print("prepare: %d reference cases bundled" % len(keep))
PY
  du -sh build-gpucheck
  echo "prepare: done. Now: run(command=\"scripts/gpu-check.sh core\", carry=[\"build-gpucheck\"], timeout_s=420)," \
       "then the same with nemo"
  exit 0
fi

OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
REPS=${GPU_CHECK_REPS:-3}
SUM="$OUT/summary.txt"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$SUM"; }
REF=${AGX_REF_DIR:-}
if [ -z "$REF" ]; then
  for d in build-gpucheck/ref ../shared/ref shared/ref; do
    [ -f "$d/models/manifest.json" ] && REF=$(cd "$d" && pwd) && break
  done
fi
# cuBLAS / cudart of the machine's toolkit (or of its Python wheels)
CULIB=$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null)
export LD_LIBRARY_PATH="$PWD/build-gpucheck/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${CULIB:-}:${LD_LIBRARY_PATH:-}"

log "gpu-check $MODE: git $(git rev-parse --short HEAD 2>/dev/null || echo '?'), nvcc ${NVCC:-none}, ref ${REF:-none}, $JOBS cores"
{
  echo "== nvidia-smi"; nvidia-smi 2>&1 || true
  echo "== nvcc"; [ -n "$NVCC" ] && "$NVCC" --version 2>&1
  echo "== cpu"; lscpu 2>/dev/null | grep -E 'Model name|^CPU\(s\)' || true
} >"$OUT/env.txt" 2>&1

B=
if [ "${GPU_CHECK_BUILD:-0}" != 1 ] && [ -x build-gpucheck/bin/test_device ]; then
  if build-gpucheck/bin/test_device >"$OUT/build.log" 2>&1; then B=build-gpucheck/bin; log "using the prebuilt build-gpucheck/bin"
  else log "prebuilt binaries do not run here (see build.log): building"; fi
fi
if [ -z "$B" ]; then
  [ -n "$NVCC" ] || { log "FAIL: no nvcc (set CUDACXX)"; exit 1; }
  t0=$(date +%s)
  if ! build_cuda "$OUT/build.log"; then log "FAIL: build (see build.log)"; tail -30 "$OUT/build.log" | tee -a "$SUM"; exit 1; fi
  log "build ok in $(( $(date +%s) - t0 )) s"
  B=build-cuda
fi
export AGX_LOG=warn

bench() {   # name file reps cpu_reps
  log "bench $1: GPU next to the CPU engine ($JOBS threads)"
  local line
  line=$(timeout 420 "$B/bench_cuda" -m "$2" -p 512 -n 128 -r "$3" --cpu-reps "$4" -t "$JOBS" --json \
         2>>"$OUT/bench.txt") || log "bench $1 failed (see bench.txt)"
  [ -n "$line" ] && echo "$line" >>"$OUT/bench.jsonl" && echo "$line" | tee -a "$OUT/bench.txt" "$SUM"
  log "bench $1: GPU decode without CUDA graphs (AGX_CUDA_GRAPHS=0)"
  AGX_CUDA_GRAPHS=0 timeout 120 "$B/bench_cuda" -m "$2" -p 0 -n 128 -r "$3" 2>&1 | tee -a "$OUT/bench.txt"
}

if [ "$MODE" = all ] || [ "$MODE" = core ]; then
  log "tests: test_device, test_model_cuda (AGX_REF_DIR=${REF:-unset})"
  { AGX_REF_DIR="$REF" timeout 120 "$B/test_device"; echo "test_device rc=$?"
    AGX_REF_DIR="$REF" timeout 300 "$B/test_model_cuda"; echo "test_model_cuda rc=$?"; } >"$OUT/tests.txt" 2>&1
  if ! grep -q 'test_model_cuda rc=0' "$OUT/tests.txt"; then   # once more, synchronising after every kernel
    log "test_model_cuda failed: rerun on one case with AGX_CUDA_DEBUG=1"
    { AGX_REF_DIR="$REF" AGX_CUDA_DEBUG=1 AGX_GPU_CASES=qwen2-tiny-Q4_K_M timeout 90 "$B/test_model_cuda"
      echo "debug rerun rc=$?"; } >>"$OUT/tests.txt" 2>&1
  fi
  grep -E 'rc=|device:|gpu |SKIPPED|FAILED|ERROR|CUDA:' "$OUT/tests.txt" | tee -a "$SUM"
  SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
  if [ -n "$SAN" ]; then
    log "compute-sanitizer memcheck on test_model_cuda"
    AGX_REF_DIR="$REF" AGX_GPU_CASES=qwen2-tiny-Q4_K_M,llama-tiny-Q8_0,qwen2-tiny-F16 timeout 180 \
      "$SAN" --tool memcheck --print-limit 20 "$B/test_model_cuda" >"$OUT/memcheck.txt" 2>&1
    echo "memcheck rc=$?" >>"$OUT/memcheck.txt"
    grep -E 'ERROR SUMMARY|rc=' "$OUT/memcheck.txt" | tail -3 | tee -a "$SUM"
  else
    log "compute-sanitizer not found: memcheck skipped"
  fi
  Q15=/tmp/agx-qwen2.5-1.5b-q4_K_M.gguf
  [ -f "$Q15" ] || { log "generating $Q15"; timeout 300 "$B/agx_gen_model" --preset qwen2.5-1.5b --type q4_K_M \
                       --threads "$JOBS" --quiet -o "$Q15" >>"$OUT/bench.txt" 2>&1; }
  [ -f "$Q15" ] && bench qwen2.5-1.5b-q4_K_M "$Q15" "$REPS" "$REPS"
fi
if [ "$MODE" = all ] || [ "$MODE" = nemo ]; then
  NEMO=/tmp/agx-mistral-nemo-12b-q4_K_M.gguf
  [ -f "$NEMO" ] || { log "generating $NEMO"; timeout 420 "$B/agx_gen_model" --preset mistral-nemo-12b \
                        --type q4_K_M --threads "$JOBS" --quiet -o "$NEMO" >>"$OUT/bench.txt" 2>&1; }
  [ -f "$NEMO" ] && bench mistral-nemo-12b-q4_K_M "$NEMO" 1 1
fi
log "done ($MODE)"
