#!/usr/bin/env bash
# gpu-check.sh — the one GPU run owed by issue 9 (CUDA backend). See docs/cuda.md.
#
#   scripts/gpu-check.sh prepare      HERE (no GPU needed): builds build-gpubundle
#       (-DAGX_CUDA=ON, RUNPATH $ORIGIN/../lib) and writes build-gpucheck/ (ignored by
#       .gitignore's /build*/, < 64 MiB with the checkout): bundle.tgz = the binaries, every
#       shared library they need beyond glibc and CUDA (the device image has none of the
#       Debian -dev packages and nothing can be fetched there) and the Qwen2 tokenizer;
#       ref/models = the reference cases but qwen2-tiny-F32 (size: the tree that travels is
#       limited to 64 MiB; that case is exact on the CUDA emulator). Then ONE device call
#       (15 min of device time per session, start-up included):
#         run(command="scripts/gpu-check.sh all", carry=["build-gpucheck"], timeout_s=570)
#   scripts/gpu-check.sh [all|core|nemo]   ON THE GPU MACHINE:
#       core: GPU tests (device selection, GPU context vs CPU context, conformance vs
#             llama.cpp in the CPU bands), then on the Qwen2.5-1.5B-shaped Q4_K_M file:
#             `agx bench` (pp512/tg128, memory) on the GPU next to the CPU, the variants
#             of every default chosen without a GPU (bench_cuda), a per-launch profile,
#             `bench_plan` (a 7-task `agx plan add`) on the GPU next to the CPU, and
#             `agx plan add` through the CLI; last, compute-sanitizer memcheck on one case
#       nemo: the Mistral-Nemo-12B-shaped Q4_K_M file: `agx bench` GPU and CPU, profile
#       all:  both (default)
#   Uses the bundle when its binaries run there, else builds build-cuda from source
#   (needs the -dev packages of scripts/install-deps.sh, which the device image lacks).
#   Results go to $OUT (default ./gpu-out): summary.txt, env.txt, build.log, tests.txt,
#   bench.txt, bench.jsonl, profile.txt, memcheck.txt (8 files: the most the device tool
#   returns) — each written as its step ends, so a timeout still returns what was done.
#   scripts/gpu-check.sh dryrun       HERE: every step of `all` on the CPU CUDA emulator
#       (build-emu, -DAGX_CUDA_EMU=ON), with tiny generated models and short benches, so
#       that the device call cannot fail on the script's own plumbing (~20 min; the
#       figures mean nothing, the steps and files do). Results in ./gpu-out-dryrun.
# env: AGX_REF_DIR, CUDACXX, GPU_CHECK_REPS (default 3), GPU_CHECK_BUILD=1 (force a source build),
#      GPU_CHECK_BIN=DIR (use these binaries), GPU_CHECK_Q15 / GPU_CHECK_NEMO (bench these
#      files instead of generating the shaped ones), GPU_CHECK_PP / GPU_CHECK_TG (512 / 128),
#      GPU_CHECK_TSCALE (timeouts x N; the dry run uses 10)
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-all}
if [ "$MODE" = dryrun ]; then
  cmake -S . -B build-emu -DCMAKE_BUILD_TYPE=Release -DAGX_CUDA_EMU=ON >/dev/null &&
    cmake --build build-emu -j"$(nproc)" --target agx_cli agx_gen_model bench_cuda bench_plan \
      test_device test_context_device test_model_cuda >/dev/null || { echo "dryrun: build-emu failed"; exit 1; }
  D=$(mktemp -d)
  VOC=${AGX_REF_DIR:-../shared/ref}/tokenizer/qwen2.vocab.gguf
  build-emu/agx_gen_model --preset tiny-qwen2 --type q4_K_M --vocab-from "$VOC" --quiet -o "$D/q15.gguf" &&
    build-emu/agx_gen_model --preset tiny-nemo --type q4_K_M --quiet -o "$D/nemo.gguf" ||
    { echo "dryrun: agx_gen_model failed"; exit 1; }
  OUT=${OUT:-$PWD/gpu-out-dryrun} GPU_CHECK_BIN=$PWD/build-emu GPU_CHECK_Q15=$D/q15.gguf \
    GPU_CHECK_NEMO=$D/nemo.gguf GPU_CHECK_PP=${GPU_CHECK_PP:-16} GPU_CHECK_TG=${GPU_CHECK_TG:-4} \
    GPU_CHECK_REPS=${GPU_CHECK_REPS:-1} GPU_CHECK_TSCALE=${GPU_CHECK_TSCALE:-10} AGX_GPU_CASES=${AGX_GPU_CASES:-qwen2-tiny-Q4_K_M} "$0" all
  rc=$?
  rm -rf "$D"
  exit $rc
fi
JOBS=$(nproc)
NVCC=${CUDACXX:-$(command -v nvcc || true)}
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
BINS="agx agx_gen_model bench_cuda bench_plan test_device test_context_device test_model_cuda"
TARGETS="agx_cli agx_gen_model bench_cuda bench_plan test_device test_context_device test_model_cuda"

build_cuda() {   # $1: build dir, $2: log file, then extra cmake arguments
  local dir=$1 logf=$2
  shift 2
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DAGX_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" "$@" >"$logf" 2>&1 &&
    cmake --build "$dir" -j"$JOBS" --target $TARGETS >>"$logf" 2>&1
}

if [ "$MODE" = prepare ]; then
  [ -n "$NVCC" ] || { echo "prepare: no nvcc (set CUDACXX)"; exit 1; }
  REF=${AGX_REF_DIR:-../shared/ref}
  [ -f "$REF/models/manifest.json" ] || { echo "prepare: no $REF/models/manifest.json (set AGX_REF_DIR)"; exit 1; }
  echo "prepare: building build-gpubundle"
  # DT_RPATH (not RUNPATH): it also applies to the libraries' own dependencies (libcurl's)
  build_cuda build-gpubundle /tmp/agx-gpucheck-build.log '-DCMAKE_BUILD_RPATH=$ORIGIN/../lib' \
    -DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags ||
    { tail -30 /tmp/agx-gpucheck-build.log; exit 1; }
  STAGE=$(mktemp -d)
  mkdir -p "$STAGE/bin" "$STAGE/lib" "$STAGE/tokenizer"
  for b in $BINS; do cp "build-gpubundle/$b" "$STAGE/bin/"; done
  # every shared library beyond glibc/libstdc++ and CUDA's own (those come from the machine)
  for b in $BINS; do ldd "build-gpubundle/$b" | awk '$3 ~ /^\// {print $3}'; done | sort -u |
    grep -vE '/(libc|libm|libpthread|libdl|librt|libresolv|libnss[^/]*|libutil|libanl|libgcc_s|libstdc\+\+|ld-linux[^/]*|libcuda|libcudart|libcublas[^/]*)\.so' |
    xargs -r -I{} cp -L {} "$STAGE/lib/"
  cp "$REF/tokenizer/qwen2.vocab.gguf" "$STAGE/tokenizer/"
  rm -rf build-gpucheck && mkdir -p build-gpucheck/ref/models
  tar czf build-gpucheck/bundle.tgz -C "$STAGE" . && rm -rf "$STAGE"
  python3 - "$REF/models" build-gpucheck/ref/models <<'PY'
import json, shutil, sys, os
src, dst = sys.argv[1], sys.argv[2]
man = json.load(open(os.path.join(src, "manifest.json")))
# all but qwen2-tiny-F32 (13.7 MB; exact on the CUDA emulator): the travelling tree's limit is 64 MiB
keep = [c for c in man["cases"] if c["name"] != "qwen2-tiny-F32"]
for c in keep:
    for suf in (".gguf", ".json", ".logits.f32", ".gen.logits.f32"):
        shutil.copy(os.path.join(src, c["name"] + suf), dst)
man["cases"] = keep
json.dump(man, open(os.path.join(dst, "manifest.json"), "w"), indent=1)
print("prepare: %d reference cases bundled" % len(keep))
PY
  du -sh --apparent-size build-gpucheck/bundle.tgz build-gpucheck
  echo "prepare: done. Now: run(command=\"scripts/gpu-check.sh all\", carry=[\"build-gpucheck\"], timeout_s=570)"
  exit 0
fi

OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
REPS=${GPU_CHECK_REPS:-3}
PP=${GPU_CHECK_PP:-512}
TG=${GPU_CHECK_TG:-128}
TS=${GPU_CHECK_TSCALE:-1}   # timeouts x TS (the dry run on the emulator is slower)
SUM="$OUT/summary.txt"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$SUM"; }
REF=${AGX_REF_DIR:-}
if [ -z "$REF" ]; then
  for d in build-gpucheck/ref ../shared/ref shared/ref; do
    [ -f "$d/models/manifest.json" ] && REF=$(cd "$d" && pwd) && break
  done
fi
# cudart/cuBLAS of the machine's toolkit (or of its Python wheels); the bundle's own
# libraries are found through the binaries' RUNPATH, so nothing else sees them
CULIB=$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null)
CURT=$(python3 -c 'import nvidia.cuda_runtime, os; print(os.path.dirname(nvidia.cuda_runtime.__file__) + "/lib")' 2>/dev/null)
export LD_LIBRARY_PATH="/usr/local/cuda/lib64:/usr/local/cuda/lib:${CULIB:-}:${CURT:-}:${LD_LIBRARY_PATH:-}"

log "gpu-check $MODE: git $(git rev-parse --short HEAD 2>/dev/null || echo '?'), nvcc ${NVCC:-none}, ref ${REF:-none}, $JOBS cores"
{
  echo "== nvidia-smi"; nvidia-smi 2>&1 || true
  echo "== nvcc"; [ -n "$NVCC" ] && "$NVCC" --version 2>&1
  echo "== os"; cat /etc/os-release 2>/dev/null | head -3; ldd --version 2>&1 | head -1
  echo "== cpu"; lscpu 2>/dev/null | grep -E 'Model name|^CPU\(s\)' || true
} >"$OUT/env.txt" 2>&1

B=${GPU_CHECK_BIN:-}
KIT=/tmp/agx-gpucheck
if [ -n "$B" ]; then log "using the binaries in $B"
elif [ "${GPU_CHECK_BUILD:-0}" != 1 ] && [ -f build-gpucheck/bundle.tgz ]; then
  rm -rf "$KIT" && mkdir -p "$KIT" && tar xzf build-gpucheck/bundle.tgz -C "$KIT"
  if "$KIT/bin/test_device" >"$OUT/build.log" 2>&1; then B=$KIT/bin; log "using the prepared bundle"
  else log "the bundle's binaries do not run here (see build.log): building"; ldd "$KIT/bin/agx" >>"$OUT/build.log" 2>&1; fi
fi
if [ -z "$B" ]; then
  [ -n "$NVCC" ] || { log "FAIL: no nvcc (set CUDACXX)"; exit 1; }
  t0=$(date +%s)
  if ! build_cuda build-cuda "$OUT/build.log"; then log "FAIL: build (see build.log)"; tail -30 "$OUT/build.log" | tee -a "$SUM"; exit 1; fi
  log "build ok in $(( $(date +%s) - t0 )) s"
  B=build-cuda
fi
VOCAB=$KIT/tokenizer/qwen2.vocab.gguf
[ -f "$VOCAB" ] || VOCAB=${REF%/models}/tokenizer/qwen2.vocab.gguf
export AGX_LOG=warn

agx_bench() {   # name file device reps: one JSON line into bench.jsonl and the summary
  log "agx bench $1 on $3 ($4 reps, $JOBS threads)"
  local line
  line=$(timeout $((300 * TS)) "$B/agx" bench -m "$2" -p "$PP" -n "$TG" -r "$4" -t "$JOBS" --device "$3" --json 2>>"$OUT/bench.txt") ||
    log "agx bench $1 on $3 failed (see bench.txt)"
  [ -n "$line" ] && echo "{\"model\": \"$1\", \"device_asked\": \"$3\", \"bench\": $line}" >>"$OUT/bench.jsonl" &&
    echo "$line" | tee -a "$OUT/bench.txt" "$SUM"
}

# where a step's time goes, per launch (AGX_CUDA_PROFILE=1: graphs off, timing events
# around every launch; the hardware profilers do not run on every machine's runtime)
profile() {   # name file tg
  log "per-launch profile of $1 (AGX_CUDA_PROFILE=1, -p $PP -n $3): profile.txt"
  { echo "== $1 (-p $PP -n $3)"; AGX_CUDA_PROFILE=1 timeout $((120 * TS)) "$B/bench_cuda" -m "$2" -p "$PP" -n "$3" -r 1 \
      --json; echo "rc=$?"; } >>"$OUT/profile.txt" 2>&1
  awk -v m="== $1 " 'index($0, m) == 1 {on = 1; next} /^== / {on = 0}
       on && /^agx CUDA profile/ {n = 0; print; next} on && n < 6 && /^  / {n++; print}' "$OUT/profile.txt" | tee -a "$SUM"
}

if [ "$MODE" = all ] || [ "$MODE" = core ]; then
  log "tests: test_device, test_context_device, test_model_cuda (AGX_REF_DIR=${REF:-unset})"
  { for t in test_device test_context_device test_model_cuda; do
      AGX_REF_DIR="$REF" AGX_GEN_MODEL="$B/agx_gen_model" timeout $((300 * TS)) "$B/$t"; echo "$t rc=$?"
    done; } >"$OUT/tests.txt" 2>&1
  if ! grep -q 'test_model_cuda rc=0' "$OUT/tests.txt"; then   # once more, synchronising after every kernel
    log "test_model_cuda failed: rerun on one case with AGX_CUDA_DEBUG=1"
    { AGX_REF_DIR="$REF" AGX_CUDA_DEBUG=1 AGX_GPU_CASES=qwen2-tiny-Q4_K_M timeout $((90 * TS)) "$B/test_model_cuda"
      echo "debug rerun rc=$?"; } >>"$OUT/tests.txt" 2>&1
  fi
  # the tensor-core prompt path (AGX_CUDA_GEMM=mma, not the default) on two cases: the
  # self-test checks the mma register layout on this GPU, the cases the bands through it
  { AGX_REF_DIR="$REF" AGX_CUDA_GEMM=mma AGX_GPU_CASES=qwen2-tiny-Q4_K_M,llama-tiny-Q8_0 timeout $((120 * TS)) \
      "$B/test_model_cuda"; echo "test_model_cuda AGX_CUDA_GEMM=mma rc=$?"; } >>"$OUT/tests.txt" 2>&1
  grep -E 'rc=|device:|gpu |matmul_mma|SKIPPED|FAILED|ERROR|CUDA:' "$OUT/tests.txt" | tee -a "$SUM"
  Q15=${GPU_CHECK_Q15:-/tmp/agx-qwen2.5-1.5b-q4_K_M.gguf}
  [ -f "$Q15" ] || { log "generating $Q15 (Qwen2 tokenizer from $VOCAB)"; timeout $((300 * TS)) "$B/agx_gen_model" \
      --preset qwen2.5-1.5b --type q4_K_M --vocab-from "$VOCAB" --threads "$JOBS" --quiet -o "$Q15" >>"$OUT/bench.txt" 2>&1; }
  if [ -f "$Q15" ]; then
    agx_bench qwen2.5-1.5b-q4_K_M "$Q15" cuda "$REPS"
    agx_bench qwen2.5-1.5b-q4_K_M "$Q15" cpu 1
    # the paths the default was chosen for without a GPU (docs/cuda.md): decode with 8-bit vs f32
    # activations and without graphs; prompts through the 8-bit matvec vs cuBLAS f16 / f32
    # (split attention matters at long contexts: its runs decode after a 512-token prompt)
    log "variants on the GPU (bench_cuda): default, AGX_CUDA_MMV=f32, AGX_CUDA_MMV_UNROLL=1, AGX_CUDA_GRAPHS=0, AGX_CUDA_ATTN_SPLIT=0, AGX_CUDA_GEMM=mma|f16|f32, AGX_CUDA_UPLOAD=pageable"
    for v in "" AGX_CUDA_MMV=f32 AGX_CUDA_MMV_UNROLL=1 AGX_CUDA_GRAPHS=0 AGX_CUDA_ATTN_SPLIT=0 AGX_CUDA_GEMM=mma AGX_CUDA_GEMM=f16 AGX_CUDA_GEMM=f32 AGX_CUDA_UPLOAD=pageable; do
      case $v in AGX_CUDA_GEMM=*) pn="-p $PP -n 0" ;; ""|AGX_CUDA_ATTN_SPLIT=*) pn="-p $PP -n $TG" ;; AGX_CUDA_UPLOAD=*) pn="-p 8 -n 8" ;; *) pn="-p 0 -n $TG" ;; esac
      echo "-- ${v:-default} ($pn)" >>"$OUT/bench.txt"
      line=$(env $v AGX_LOG=info timeout $((120 * TS)) "$B/bench_cuda" -m "$Q15" $pn -r "$REPS" --json 2>>"$OUT/bench.txt")
      echo "$line" >>"$OUT/bench.txt"
      if [ -n "$line" ]; then
        echo "{\"variant\": \"${v:-default}\", \"bench_cuda\": $line}" >>"$OUT/bench.jsonl"
        echo "${v:-default}: $line" | tee -a "$SUM"
      else
        log "bench_cuda ${v:-default} failed (see bench.txt)"
      fi
    done
    profile qwen2.5-1.5b-q4_K_M "$Q15" "$TG"
    log "bench_plan (7-task plan add) on the GPU, then on the CPU"
    for d in cuda cpu; do
      echo "-- AGX_DEVICE=$d" >>"$OUT/bench.txt"
      # AGX_LOG=info: the device lines of the load (CUDA init, weight upload time and rate)
      AGX_LOG=info AGX_DEVICE=$d timeout $((150 * TS)) "$B/bench_plan" "$Q15" --threads "$JOBS" --runs $([ $d = cuda ] && echo "$REPS" || echo 1) \
        2>&1 | tee -a "$OUT/bench.txt" | tail -12 | sed "s/^/$d: /" | tee -a "$SUM"
    done
    # the issue's "agx plan add under 0.5 s", through the CLI: a fresh process each time, first with
    # no prompt cache file, then with the one the first wrote (random weights: the plan is meaningless)
    log "agx plan add through the CLI on the GPU (wall time of the process): no prompt cache file, then with it"
    PW=$(mktemp -d)
    for i in 1 2 3; do
      s0=$(date +%s%N)
      AGX_LOG=info AGX_BACKEND=native AGX_ECHO_MODEL="$Q15" AGX_DEVICE=cuda AGX_CANDLE_MAX_TOKENS=120 \
        AGX_PLAN_PATH="$PW/plan.json" AGX_PROMPT_CACHE="$PW/cache" timeout $((60 * TS)) "$B/agx" plan add \
        "find all TODO comments under src and count them per file" >>"$OUT/bench.txt" 2>&1
      rc=$?
      echo "plan add $i: rc $rc, $(( ($(date +%s%N) - s0) / 1000000 )) ms wall" | tee -a "$OUT/bench.txt" | tee -a "$SUM"
    done
    rm -rf "$PW"
  fi
fi
if [ "$MODE" = all ] || [ "$MODE" = nemo ]; then
  NEMO=${GPU_CHECK_NEMO:-/tmp/agx-mistral-nemo-12b-q4_K_M.gguf}
  [ -f "$NEMO" ] || { log "generating $NEMO"; timeout $((420 * TS)) "$B/agx_gen_model" --preset mistral-nemo-12b \
                        --type q4_K_M --threads "$JOBS" --quiet -o "$NEMO" >>"$OUT/bench.txt" 2>&1; }
  if [ -f "$NEMO" ]; then
    agx_bench mistral-nemo-12b-q4_K_M "$NEMO" cuda 1
    agx_bench mistral-nemo-12b-q4_K_M "$NEMO" cpu 1
    profile mistral-nemo-12b-q4_K_M "$NEMO" 32
  fi
fi
# last: the memory checker (slow, and it refuses some machines' runtimes), after every figure
if [ "$MODE" = all ] || [ "$MODE" = core ]; then
  SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
  if [ -n "$SAN" ]; then   # the CPU emulator's ASan run covers every case; this checks the real device
    log "compute-sanitizer memcheck on test_model_cuda (one case)"
    AGX_REF_DIR="$REF" AGX_GEN_MODEL="$B/agx_gen_model" AGX_GPU_CASES=qwen2-tiny-Q4_K_M timeout $((150 * TS)) \
      "$SAN" --tool memcheck --print-limit 20 "$B/test_model_cuda" >"$OUT/memcheck.txt" 2>&1
    echo "memcheck rc=$?" >>"$OUT/memcheck.txt"
    grep -E 'ERROR SUMMARY|rc=' "$OUT/memcheck.txt" | tail -3 | tee -a "$SUM"
  else
    log "compute-sanitizer not found: memcheck skipped"
  fi
fi
log "done ($MODE)"
