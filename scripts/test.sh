#!/usr/bin/env bash
# test.sh — the whole test suite: a -Werror release build + ctest, the CUDA build
# (when nvcc exists) + ctest, the GPU tests on the CPU CUDA emulator, the unit and
# conformance tests again under AddressSanitizer + UndefinedBehaviorSanitizer,
# the threaded tests under ThreadSanitizer, then each libFuzzer target for a
# bounded time. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}

echo "== release build (-Werror) + tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DAGX_WERROR=ON >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure -j"$JOBS"

# CUDA build: whenever nvcc is installed, so the CUDA code is compiled in CI
# (no GPU there) and cannot rot. Its test suite is the CPU suite plus the GPU
# tests, which skip loudly without a device (scripts/gpu-check.sh runs them on one).
NVCC=${CUDACXX:-$(command -v nvcc || true)}
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
if [ "${AGX_SKIP_CUDA:-0}" != 1 ] && [ -n "$NVCC" ]; then
  echo "== CUDA build (-DAGX_CUDA=ON, $NVCC) + tests"
  cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DAGX_WERROR=ON -DAGX_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$NVCC" >/dev/null
  cmake --build build-cuda -j"$JOBS"
  ctest --test-dir build-cuda --output-on-failure -j"$JOBS"
elif [ "${AGX_SKIP_CUDA:-0}" != 1 ]; then
  echo "== CUDA build skipped: no nvcc found (set CUDACXX=/path/to/nvcc)"
fi

# The same CUDA sources compiled as C++ for the CPU CUDA emulator (tests/cuda_emu):
# every kernel, the device forward pass, graphs and device selection really run
# here, without a GPU, against the CPU engine and llama.cpp's logits.
if [ "${AGX_SKIP_CUDA_EMU:-0}" != 1 ]; then
  # ASan+UBSan too: device memory is heap memory there, so this is also a memcheck
  echo "== CUDA code on the CPU emulator (-DAGX_CUDA_EMU=ON, ASan+UBSan) + the GPU tests"
  cmake -S . -B build-cudaemu -DCMAKE_BUILD_TYPE=Debug -DAGX_SANITIZE=ON -DAGX_WERROR=ON -DAGX_CUDA_EMU=ON >/dev/null
  cmake --build build-cudaemu -j"$JOBS" --target agx_cli test_cuda_emu test_device test_context_device test_model_cuda bench_cuda agx_gen_model
  # Threads and blocks in a shuffled (seeded, so reproducible) order rather than launch order:
  # a kernel that is right only in launch order (a missing __syncthreads) fails here.
  AGX_CUDA_EMU_ORDER=random AGX_CUDA_EMU_SEED=${AGX_CUDA_EMU_SEED:-20261127} \
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-cudaemu --output-on-failure -j"$JOBS" -L cuda
fi

if [ "${AGX_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== ASan+UBSan build + tests"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DAGX_SANITIZE=ON -DAGX_WERROR=ON >/dev/null
  cmake --build build-asan -j"$JOBS"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$JOBS" -LE slow
fi

# ThreadSanitizer over the tests that run agx from several threads (thread pool, contexts
# and engines sharing one model, remote backends, grammar and tokenizer users).
if [ "${AGX_SKIP_TSAN:-0}" != 1 ]; then
  echo "== ThreadSanitizer build + the threaded tests"
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAGX_SANITIZE_THREAD=ON -DAGX_WERROR=ON >/dev/null
  cmake --build build-tsan -j"$JOBS"
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
    ctest --test-dir build-tsan --output-on-failure -j"$JOBS" \
    -R '^test_(threadpool|context_device|native_backend|remote_backends|grammar|tokenizer|kernels|ops)$'
fi

if [ "${AGX_SKIP_FUZZ:-0}" != 1 ] && ls tests/fuzz/fuzz_*.c >/dev/null 2>&1; then
  echo "== libFuzzer targets (bounded)"
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DAGX_FUZZ=ON -DAGX_BUILD_TESTS=OFF >/dev/null
  cmake --build build-fuzz -j"$JOBS"
  for f in build-fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus="tests/fuzz/corpus/${name#fuzz_}"
    mkdir -p "build-fuzz/corpus-$name"
    echo "-- $name (${AGX_FUZZ_SECS:-60}s)"
    # The whole report (input, stack) on a failure; the summary otherwise.
    if ! "$f" -max_total_time="${AGX_FUZZ_SECS:-60}" -rss_limit_mb=2048 -artifact_prefix=build-fuzz/ \
        "build-fuzz/corpus-$name" $( [ -d "$corpus" ] && echo "$corpus" ) >"build-fuzz/$name.log" 2>&1; then
      tail -80 "build-fuzz/$name.log"
      echo "FAILED: $name (reproduce: $f build-fuzz/crash-*; add the input to $corpus once fixed)"
      exit 1
    fi
    tail -3 "build-fuzz/$name.log"
  done
fi
echo "== all tests passed"
