#!/usr/bin/env bash
# download-models.sh [DIR] — fetches the recommended GGUF models for the native
# backend into DIR (default: $AGX_MODELS_DIR, else ~/.agx/models):
#   Echo  (fast drafting):       Qwen2.5-1.5B-Instruct, Q4_K_M   (~1.1 GB)
#   Delta (validate and refine): Mistral-Nemo-Instruct-2407, Q4_K_M (~7.5 GB)
# Resumable (curl -C -), verified against the size and SHA-256 the server
# publishes for the file (Hugging Face's X-Linked-Size / X-Linked-ETag headers;
# or AGX_ECHO_SHA256 / AGX_DELTA_SHA256), skips files already verified, and
# prints the export lines to use them. Offline it fails fast (short connect
# timeout) with a clear message.
#
# Overrides: AGX_ECHO_URL, AGX_DELTA_URL (mirrors), AGX_DOWNLOAD_CONNECT_TIMEOUT
# (seconds, default 10), AGX_DOWNLOAD_ONLY=echo|delta.
set -euo pipefail

ECHO_URL="${AGX_ECHO_URL:-https://huggingface.co/Qwen/Qwen2.5-1.5B-Instruct-GGUF/resolve/main/qwen2.5-1.5b-instruct-q4_k_m.gguf}"
DELTA_URL="${AGX_DELTA_URL:-https://huggingface.co/bartowski/Mistral-Nemo-Instruct-2407-GGUF/resolve/main/Mistral-Nemo-Instruct-2407-Q4_K_M.gguf}"
CONNECT_TIMEOUT="${AGX_DOWNLOAD_CONNECT_TIMEOUT:-10}"
ONLY="${AGX_DOWNLOAD_ONLY:-}"

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
DIR="${1:-${AGX_MODELS_DIR:-$HOME/.agx/models}}"

die() { echo "download-models: $*" >&2; exit 1; }
command -v curl >/dev/null 2>&1 || die "curl is not installed (apt-get install curl)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum is not installed (coreutils)"
mkdir -p "$DIR" || die "cannot create '$DIR'"

# Expected size and sha256 from the server's headers for the final file.
remote_meta() {  # url -> "size sha256" (either may be "-")
    local url="$1" headers size sha
    if ! headers=$(curl -sSI -L --connect-timeout "$CONNECT_TIMEOUT" --max-time 60 "$url" 2>&1); then
        die "cannot reach ${url%%/resolve/*} (${headers##*curl: }). This machine looks offline:
  download the file elsewhere and copy it into $DIR, or set AGX_ECHO_URL/AGX_DELTA_URL to a mirror."
    fi
    size=$(printf '%s\n' "$headers" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-linked-size"{v=$2} END{print v}')
    sha=$(printf '%s\n' "$headers" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-linked-etag"{v=$2} END{print v}' | tr -d '"')
    if [ -z "$size" ]; then
        size=$(printf '%s\n' "$headers" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-length"{v=$2} END{print v}')
    fi
    printf '%s %s\n' "${size:--}" "${sha:--}"
}

fetch() {  # role url sha_override -> path
    local role="$1" url="$2" want_sha="$3" name path size sha have
    name="${url##*/}"
    path="$DIR/$name"
    if [ -f "$path" ] && [ -f "$path.sha256" ]; then
        echo "$role: $path already downloaded and verified; skipping" >&2
        printf '%s\n' "$path"
        return 0
    fi
    local meta
    meta=$(remote_meta "$url") || exit 1
    read -r size sha <<< "$meta"
    [ -n "$want_sha" ] && sha="$want_sha"
    if [ -f "$path" ] && [ "$size" != "-" ] && [ "$(stat -c %s "$path")" = "$size" ]; then
        echo "$role: $path present with the expected size; verifying" >&2
    else
        echo "$role: downloading $name into $DIR (resumable: rerun to continue)" >&2
        curl -fL --connect-timeout "$CONNECT_TIMEOUT" --retry 3 -C - -o "$path.part" "$url" ||
            die "$role: download of $url failed (rerun to resume from $path.part)"
        mv "$path.part" "$path"
    fi
    have=$(stat -c %s "$path")
    if [ "$size" != "-" ] && [ "$have" != "$size" ]; then
        die "$role: $path is $have bytes, expected $size; delete it and rerun"
    fi
    if [ "$sha" != "-" ] && [ ${#sha} -eq 64 ]; then
        local got
        got=$(sha256sum "$path" | cut -d' ' -f1)
        [ "$got" = "$sha" ] || die "$role: $path has SHA-256 $got, expected $sha; delete it and rerun"
        echo "$got  $name" > "$path.sha256"
    else
        echo "$role: warning: the server published no SHA-256; only the size was checked" >&2
        sha256sum "$path" | sed "s#  .*#  $name#" > "$path.sha256"
    fi
    printf '%s\n' "$path"
}

echo_path="" delta_path=""
if [ "$ONLY" != "delta" ]; then echo_path=$(fetch echo "$ECHO_URL" "${AGX_ECHO_SHA256:-}"); fi
if [ "$ONLY" != "echo" ]; then delta_path=$(fetch delta "$DELTA_URL" "${AGX_DELTA_SHA256:-}"); fi

echo
echo "Models ready. Add these lines to your shell profile:"
[ -n "$echo_path" ] && echo "export AGX_ECHO_MODEL=$echo_path"
[ -n "$delta_path" ] && echo "export AGX_DELTA_MODEL=$delta_path"
exit 0
