#!/usr/bin/env bash
# demo.sh — the main job on the shipped example: builds the agx command and asks
# the offline rules planner (the built-in default; no model needed) to turn an
# instruction about examples/access.log into a validated JSON plan.
#   scripts/demo.sh                       # the default instruction
#   scripts/demo.sh "count requests per status code"
# Uses a scratch plan buffer, so an existing $AGX_PLAN_PATH is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

INSTRUCTION=${1:-"show the 10 most frequent client IPs"}
EXAMPLE=examples/access.log

echo "== building agx (release)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target agx_cli >/dev/null
AGX=build/agx

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export AGX_PLAN_PATH="$scratch/agx-plan.json"

echo "== agx plan new"
"$AGX" plan new
echo
echo "== agx plan add \"$INSTRUCTION\" < $EXAMPLE"
"$AGX" plan add "$INSTRUCTION" <"$EXAMPLE"
echo
echo "== agx plan validate"
"$AGX" plan validate
echo
echo "== agx plan preview --json   (the plan, canonical JSON)"
"$AGX" plan preview --json
