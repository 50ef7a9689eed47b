#!/usr/bin/env bash
# One job of a training campaign on a GPU machine: data generation on the CPU cores while the
# GPU trains, stopping itself inside the job's time limit. Writes checkpoint + metrics.json into
# $OUT (7 files or fewer, each under 16 MiB). Chain jobs by passing the previous job's output
# folder as RESUME_DIR; an empty folder starts the campaign (a missing one is an error).
#
#   OUT=/path/out scripts/campaign.sh CONFIG [RESUME_DIR] [extra `engine campaign` options]
#
# CAMPAIGN_MINUTES (default 9) is the whole job's budget, this script's set-up included.
# The GPU machine's python3 lacks gmsh, scikit-fem and meshio: they are installed from the
# wheels carried in .carry/wheels, and .carry/lib holds the shared libraries gmsh needs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG="${1:?usage: OUT=DIR scripts/campaign.sh CONFIG [RESUME_DIR] [options]}"
shift
RESUME=()
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  RESUME=(--resume "$1")
  shift
fi
: "${OUT:?set OUT to the folder that receives the checkpoint and metrics}"
PY="${PYTHON:-python3}"
MINUTES="${CAMPAIGN_MINUTES:-9}"

# shellcheck source=device-env.sh
source "$ROOT/scripts/device-env.sh"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# What the set-up took comes off the job's budget.
LEFT=$(awk -v m="$MINUTES" -v s="$SECONDS" 'BEGIN { printf "%.2f", m - s / 60 }')
cd "$ROOT"
exec "$PY" -m engine campaign "$CONFIG" --out "$OUT" --minutes "$LEFT" ${RESUME[@]+"${RESUME[@]}"} "$@"
