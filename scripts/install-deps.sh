#!/usr/bin/env bash
# install-deps.sh — installs every Debian package agx needs to build and test.
# Idempotent: packages already present are not reinstalled; apt-get runs only
# when something is missing. Run as root (or with sudo) on Debian 12.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config   # compiler and build
  clang                              # libFuzzer targets (tests/fuzz)
  libjansson-dev                     # JSON: plans, registry, config, HTTP bodies
  libcurl4-openssl-dev               # HTTP for the ollama/openai backends
  libpcre2-dev                       # pre-tokenizer regexes (\p{L}, \p{N}) with JIT
  libutf8proc-dev                    # NFC normalization for tokenizers
  libedit-dev                        # line editing/history in the REPL
  libcmocka-dev                      # unit test framework
  libmicrohttpd-dev                  # in-process HTTP test server for backend tests
  tmux                               # drives the REPL through a terminal in tests
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
