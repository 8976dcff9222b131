#!/usr/bin/env bash
# vs-llamacpp.sh — `agx bench` and llama.cpp's `llama-bench` on the same GGUF files, alternating
# in one run on one machine, medians side by side: on a shared machine the only fair comparison.
#
#   bench/vs-llamacpp.sh [-t THREADS] [-r ROUNDS] [-p 512] [-n 128] FILE.gguf...
#
# Each round runs `agx bench -r 3` and `llama-bench -r 3` once per file (which goes first alternates
# from round to round); the table gives the median over the rounds of each one's figure, the
# ratio agx / llama.cpp, and the peak RSS of each process.
#
# llama.cpp: $LLAMA_BENCH when set; otherwise built once (CPU only, GGML_NATIVE=ON as llama.cpp's
# own default build) into $AGX_LLAMACPP_DIR (default ~/.cache/agx/llamacpp) from the source that
# the npm package node-llama-cpp ships as a git bundle of a pinned llama.cpp release, so only the
# npm registry is needed, not GitHub. Needs npm, git, cmake and g++ for that (~5 min on 2 cores).
# agx: build/agx, or $AGX_BIN. Exit: 0 done, 1 a run failed, 2 usage.
set -uo pipefail
cd "$(dirname "$0")/.."
NLC_VERSION=3.22.1 # node-llama-cpp release; its llama.cpp is recorded in the table's header
THREADS=$(nproc) ROUNDS=3 PP=512 TG=128
while getopts "t:r:p:n:h" o; do
  case $o in
  t) THREADS=$OPTARG ;; r) ROUNDS=$OPTARG ;; p) PP=$OPTARG ;; n) TG=$OPTARG ;;
  *) sed -n '2,16p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: bench/vs-llamacpp.sh [-t T] [-r ROUNDS] [-p N] [-n N] FILE.gguf..." >&2; exit 2; }
AGX=${AGX_BIN:-build/agx}
[ -x "$AGX" ] || { echo "vs-llamacpp: $AGX not found; build it first (cmake --build build --target agx_cli)" >&2; exit 2; }

build_llama() {
  local dir=${AGX_LLAMACPP_DIR:-$HOME/.cache/agx/llamacpp}
  LLAMA_BENCH=$dir/build/bin/llama-bench
  [ -x "$LLAMA_BENCH" ] && return 0
  for tool in npm git cmake g++; do
    command -v $tool >/dev/null || { echo "vs-llamacpp: building llama.cpp needs $tool (or set LLAMA_BENCH)" >&2; exit 2; }
  done
  echo "vs-llamacpp: building llama-bench in $dir (once)" >&2
  mkdir -p "$dir" && rm -rf "$dir/src" "$dir/pkg" && mkdir -p "$dir/pkg" || exit 1
  (cd "$dir/pkg" && npm pack --silent "node-llama-cpp@$NLC_VERSION" >/dev/null) &&
    tar xzf "$dir/pkg/node-llama-cpp-$NLC_VERSION.tgz" -C "$dir/pkg" package/llama/gitRelease.bundle &&
    git clone -q "$dir/pkg/package/llama/gitRelease.bundle" "$dir/src" 2>/dev/null &&
    cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
      -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >"$dir/build.log" 2>&1 &&
    cmake --build "$dir/build" -j"$(nproc)" --target llama-bench >>"$dir/build.log" 2>&1 ||
    { echo "vs-llamacpp: building llama.cpp failed; see $dir/build.log" >&2; exit 1; }
  rm -rf "$dir/pkg"
}
[ -n "${LLAMA_BENCH:-}" ] || build_llama
TIME=$(command -v /usr/bin/time || true) # GNU time for llama-bench's peak RSS (Debian package "time")

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
num() { grep -o "\"$1\": *[0-9.e+-]*" | head -n 1 | sed 's/.*: *//'; } # first "key": number in stdin

run_agx() { # $1 file, $2 round: appends "pp tg rss_mb" to $TMP/agx.$k
  "$AGX" bench -m "$1" -p "$PP" -n "$TG" -r 3 -t "$THREADS" --json >"$TMP/out" 2>"$TMP/err" ||
    { echo "vs-llamacpp: agx bench failed on $1:" >&2; tail -n 3 "$TMP/err" >&2; exit 1; }
  local pp tg rss
  pp=$(sed 's/.*"pp": *{[^}]*"median": *\([0-9.]*\).*/\1/' "$TMP/out")
  tg=$(sed 's/.*"tg": *{[^}]*"median": *\([0-9.]*\).*/\1/' "$TMP/out")
  rss=$(num peak_rss_bytes <"$TMP/out")
  echo "$pp $tg $(awk -v b="$rss" 'BEGIN { printf "%.0f", b / 1048576 }')" >>"$TMP/agx.$k"
}
run_llama() {
  local cmd=("$LLAMA_BENCH" -m "$1" -p "$PP" -n "$TG" -r 3 -t "$THREADS" -o jsonl)
  if [ -n "$TIME" ]; then "$TIME" -f "%M" -o "$TMP/rss" "${cmd[@]}" >"$TMP/out" 2>"$TMP/err"
  else "${cmd[@]}" >"$TMP/out" 2>"$TMP/err"; echo 0 >"$TMP/rss"; fi ||
    { echo "vs-llamacpp: llama-bench failed on $1:" >&2; tail -n 3 "$TMP/err" >&2; exit 1; }
  local pp tg
  pp=$(grep '"n_gen": *0[,}]' "$TMP/out" | num avg_ts)
  tg=$(grep '"n_prompt": *0[,}]' "$TMP/out" | num avg_ts)
  echo "${pp:-0} ${tg:-0} $(awk '{ printf "%.0f", $1 / 1024 }' "$TMP/rss")" >>"$TMP/llama.$k"
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for r in $(seq 1 "$ROUNDS"); do
  k=0
  for f in "$@"; do
    k=$((k + 1))
    if [ $((r % 2)) = 1 ]; then run_agx "$f"; run_llama "$f"; else run_llama "$f"; run_agx "$f"; fi
  done
  echo "vs-llamacpp: round $r of $ROUNDS done" >&2
done

echo "# agx $([ -n "${AGX_BIN:-}" ] && echo "$AGX_BIN" || git describe --always --dirty 2>/dev/null || echo "?") vs llama.cpp $(cd "$(dirname "$LLAMA_BENCH")" && ./llama-bench --version 2>&1 | head -n 1 | sed "s/^version: //")"
echo "# $(grep -m 1 'model name' /proc/cpuinfo | sed 's/.*: //'), $THREADS threads, medians of $ROUNDS rounds x 3 reps, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-28s %-6s %10s %10s %7s %14s\n" file test agx llama.cpp ratio "peak RSS MB"
k=0
for f in "$@"; do
  k=$((k + 1))
  for c in 1 2; do
    test=$([ $c = 1 ] && echo "pp$PP" || echo "tg$TG")
    a=$(cut -d' ' -f$c "$TMP/agx.$k" | median) l=$(cut -d' ' -f$c "$TMP/llama.$k" | median)
    ra=$(cut -d' ' -f3 "$TMP/agx.$k" | median) rl=$(cut -d' ' -f3 "$TMP/llama.$k" | median)
    printf "%-28s %-6s %10.2f %10.2f %7s %14s\n" "$(basename "$f")" "$test" "$a" "$l" \
      "$(awk -v a="$a" -v l="$l" 'BEGIN { if (l > 0) printf "%.3f", a / l; else print "-" }')" "$ra / $rl"
  done
done
