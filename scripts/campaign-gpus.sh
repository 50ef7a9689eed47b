#!/usr/bin/env bash
# Campaign jobs side by side, one per GPU: the i-th job sees only GPU i, generates its own data
# there with the batched solver and trains there. On a 2-GPU machine two models get a job's
# worth of training each for the device time of one job.
#
#   OUT=DIR scripts/campaign-gpus.sh NAME=CONFIG[@RESUME_DIR] ... [-- options for every job]
#
# Each job writes its checkpoint and metrics to $OUT/NAME and its console to $OUT/NAME.log;
# CAMPAIGN_MINUTES bounds each job as in campaign.sh. Exits non-zero if any job failed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${OUT:?set OUT to the folder that receives the outputs of the jobs}"
PY="${PYTHON:-python3}"
JOBS=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  JOBS+=("$1")
  shift
done
[ $# -gt 0 ] && shift
[ ${#JOBS[@]} -gt 0 ] || { echo "usage: OUT=DIR $0 NAME=CONFIG[@RESUME] ... [-- options]" >&2; exit 2; }
GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
if [ "${GPUS:-0}" -lt ${#JOBS[@]} ]; then
  echo "campaign-gpus: ${#JOBS[@]} jobs but ${GPUS:-0} GPUs" >&2
  exit 2
fi
# Once, before the jobs start: concurrent pip installs into one site-packages would race.
# shellcheck source=device-env.sh
source "$ROOT/scripts/device-env.sh"
# The cores are shared too: each job's datagen meshes on its share.
WORKERS=$(( ($(nproc) - 2 * ${#JOBS[@]}) / ${#JOBS[@]} ))
[ "$WORKERS" -ge 1 ] || WORKERS=1
mkdir -p "$OUT"
PIDS=()
for i in "${!JOBS[@]}"; do
  name="${JOBS[$i]%%=*}"
  spec="${JOBS[$i]#*=}"
  config="${spec%%@*}"
  resume=()
  [[ "$spec" == *@* ]] && resume=("${spec#*@}")
  CUDA_VISIBLE_DEVICES=$i OUT="$OUT/$name" bash "$ROOT/scripts/campaign.sh" "$config" \
    ${resume[@]+"${resume[@]}"} --datagen-device cuda --workers "$WORKERS" "$@" \
    >"$OUT/$name.log" 2>&1 &
  PIDS+=($!)
  echo "campaign-gpus: $name on GPU $i ($config${resume[*]:+, resuming ${resume[*]}})"
done
STATUS=0
for i in "${!PIDS[@]}"; do
  if ! wait "${PIDS[$i]}"; then
    echo "campaign-gpus: ${JOBS[$i]%%=*} failed; see $OUT/${JOBS[$i]%%=*}.log" >&2
    STATUS=1
  fi
done
exit $STATUS
