#!/usr/bin/env bash
# One ≤ 10-minute step of training the model zoo on a GPU machine (issue 7), results under $OUT.
#
#   OUT=DIR scripts/zoo-job.sh train1   # with 2 GPUs: the DDP 1-vs-2-GPU comparison first; the
#                                       # reference solver fills data/zoo on the cores while the
#                                       # four zoo models train side by side on the GPU(s)
#   OUT=DIR scripts/zoo-job.sh train2   # more data, the held-out test set (reference solver) and
#                                       # the four resume from runs/zoo/; then every model is
#                                       # evaluated on the test set (600 steps, and a 2,000-step
#                                       # stability run of the showcase cases)
#
# With several GPUs the trainers and evaluations are spread round-robin over them.
# Steps chained back to back on the same warm machine share data/zoo and runs/zoo (ignored
# folders that stay between calls). Only model files, metrics and logs travel back: $OUT gets
# models-a.tar, models-b.tar and logs.tar.gz (a call returns at most 8 files).
# The training data comes from the CPU reference solver: the batched GPU solver wrote nothing in
# its first 300 s on an H200 (docs/gpu-datagen.md), so it is not on this path.
# Knobs for a dry run on a CPU: DEVICE=cpu COUNT=8 STEPS=20 JOB_MINUTES=3 ZOO="gt-tiny".
set -uo pipefail
cd "$(dirname "$0")/.."
PHASE="${1:?usage: OUT=DIR scripts/zoo-job.sh train1|train2|eval}"
: "${OUT:?set OUT}"
PY="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"
COUNT="${COUNT:-1200}"          # trajectories of the training set
SEED="${SEED:-1}"
STEPS="${STEPS:-600}"
JOB_MINUTES="${JOB_MINUTES:-9}"  # this step's whole budget
ZOO="${ZOO:-mgn gt-small gt-tiny physgto}"
DATA=data/zoo
RUNS=runs/zoo
LOGS=out/zoo-logs
mkdir -p "$DATA" "$RUNS" "$LOGS" "$OUT"
NGPU=1
[ "$DEVICE" = cuda ] && NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
[ "${NGPU:-0}" -ge 1 ] || NGPU=1
gpu() { echo $(($1 % NGPU)); }  # the GPU of the i-th concurrent job
cores() { local n=$(($(nproc) - $1)); echo $((n > 1 ? n : 1)); }  # all cores but $1
export PYTHONUNBUFFERED=1

log() { echo "[$(date -u +%H:%M:%S) +${SECONDS}s] $*" | tee -a "$LOGS/job.log"; }
left() { awk -v m="$JOB_MINUTES" -v s="$SECONDS" -v k="${1:-0}" 'BEGIN { printf "%.2f", m - s / 60 - k }'; }

setup() {
  # shellcheck source=device-env.sh
  ROOT="$PWD" source scripts/device-env.sh
}

environment() {
  { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    echo "cores: $(nproc)"; git rev-parse HEAD 2>/dev/null || true
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  } >"$LOGS/environment-$PHASE.txt" 2>&1
  cat "$LOGS/environment-$PHASE.txt"
}

# datagen LIMIT_SECONDS WORKERS: more of the training set with the reference solver, timed.
datagen() {
  local start=$SECONDS before after
  before=$(find "$DATA" -name 'traj-*.h5' | wc -l)
  log "datagen: $COUNT trajectories (have $before), $2 workers, limit $1 s"
  timeout --kill-after=10 "$1" "$PY" -m engine datagen --count "$COUNT" --workers "$2" \
    --seed "$SEED" --steps "$STEPS" -o "$DATA" --quiet >>"$LOGS/datagen.log" 2>&1
  local rc=$?
  after=$(find "$DATA" -name 'traj-*.h5' | wc -l)
  log "datagen: exit $rc, $((after - before)) written in $((SECONDS - start)) s ($after in all)"
  "$PY" - "$DATA" "$((after - before))" "$((SECONDS - start))" "$rc" "$2" \
    >"$LOGS/datagen-$PHASE.json" <<'PYEOF'
import json, sys
from engine.data.dataset import open_dataset
root, written, seconds, rc, workers = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
summaries = open_dataset(root).manifest["trajectories"].values()
nodes = sorted(s["num_nodes"] for s in summaries)
print(json.dumps({"written": written, "seconds": seconds, "exit": rc, "workers": workers,
                  "in_dataset": len(nodes), "per_10_min": written * 600.0 / max(seconds, 1e-9),
                  "nodes_min_median_max": [nodes[0], nodes[len(nodes) // 2], nodes[-1]] if nodes else None}))
PYEOF
}

# train MINUTES: every zoo model side by side, each resuming its own checkpoint when it has one.
train() {
  log "training ${ZOO} for $1 min each"
  local pids=() i=0
  for name in $ZOO; do
    local resume=()
    [ -f "$RUNS/$name/trainer.json" ] && resume=(--resume "$RUNS/$name")
    CUDA_VISIBLE_DEVICES=$(gpu $i) "$PY" -m engine train "configs/zoo/$name.json" --data "$DATA" --out "$RUNS/$name" \
      --stop-after "$1" --device "$DEVICE" "${resume[@]}" >"$LOGS/train-$name-$PHASE.log" 2>&1 &
    pids+=($!)
    i=$((i + 1))
  done
  for pid in "${pids[@]}"; do wait "$pid" || log "a trainer exited with $?"; done
  for name in $ZOO; do log "$name: $(tail -n 1 "$LOGS/train-$name-$PHASE.log" | cut -c1-400)"; done
}

# ddp_compare SECONDS: the same config and global batch on 1 GPU, then on 2 (scripts/ddp-compare.sh).
ddp_compare() {
  log "DDP comparison: at most $1 s"
  OUT="$LOGS" PYTHON="$PY" timeout --kill-after=10 "$1" scripts/ddp-compare.sh data/ddp 3 \
    >/dev/null 2>&1 || log "DDP comparison: exit $?"
  log "DDP: $(head -n 3 "$LOGS/summary.json" 2>/dev/null | tr -d '\n')"
}

# evaluate SECONDS: every model on the test set, side by side; the 2,000-step stability check last.
evaluate() {
  local pids=() i=0 name
  for name in $ZOO; do
    [ -f "$RUNS/$name/model.safetensors" ] || continue
    ( export CUDA_VISIBLE_DEVICES=$(gpu $i)
      ev() { timeout --kill-after=5 "$1" "$PY" -m engine evaluate --model "$RUNS/$name/model" \
               --device "$DEVICE" --steps "$STEPS" "${@:2}"; }
      ev "$1" --testset data/testset/showcase --long-steps 0 --json "$LOGS/eval-$name-showcase.json"
      ev "$1" --testset data/testset/envelope --long-steps 0 --json "$LOGS/eval-$name-envelope.json"
      ev "$1" --testset data/testset/showcase --long-steps 2000 --json "$LOGS/eval-$name-long.json"
    ) >"$LOGS/eval-$name.log" 2>&1 &
    pids+=($!)
    i=$((i + 1))
  done
  ( sleep "$1"; pkill -f "engine evaluate" ) &
  local watchdog=$!
  wait "${pids[@]}"
  kill "$watchdog" 2>/dev/null
  log "evaluation: $(ls "$LOGS"/eval-*.json 2>/dev/null | wc -l) result files"
}

pack() {
  for name in $ZOO; do
    [ -f "$RUNS/$name/model.safetensors" ] || continue
    mkdir -p "$LOGS/models/$name"
    cp "$RUNS/$name"/model.safetensors "$RUNS/$name"/model.json "$LOGS/models/$name/"
    for f in "$RUNS/$name"/*.csv; do [ -f "$f" ] && cp "$f" "$LOGS/$name-$(basename "$f")"; done
  done
  # Two archives of model files (each must stay under 16 MiB), one of logs and metrics.
  (cd "$LOGS/models" && tar cf "$OUT/models-a.tar" $(ls -d mgn gt-tiny 2>/dev/null) 2>/dev/null)
  (cd "$LOGS/models" && tar cf "$OUT/models-b.tar" $(ls -d gt-small physgto 2>/dev/null) 2>/dev/null)
  tar czf "$OUT/logs.tar.gz" --exclude=models -C "$LOGS" .
  ls -la "$OUT"
}

setup
environment
case "$PHASE" in
  train1)
    if [ "$NGPU" -gt 1 ]; then
      "$PY" -m engine datagen --count 32 --seed 7 --steps 100 --workers "$(cores 2)" \
        -o data/ddp --quiet >"$LOGS/ddp-datagen.log" 2>&1
      log "DDP data: $(find data/ddp -name 'traj-*.h5' | wc -l) trajectories"
    fi
    datagen "$(awk -v l="$(left 0.5)" 'BEGIN { printf "%d", l * 60 }')" "$(cores 6)" &
    gen=$!
    [ "$NGPU" -gt 1 ] && ddp_compare 170
    train "$(left 0.9)"
    wait "$gen"
    ;;
  train2)
    log "test set"
    tests=()
    limit=$(awk -v l="$(left 4.2)" 'BEGIN { printf "%d", l * 60 }')
    for cases in showcase envelope; do  # bounded: a slow case must not eat the evaluation's time
      timeout --kill-after=10 "$limit" "$PY" -m engine testset -o "data/testset/$cases" --cases "$cases" --steps "$STEPS" \
        --workers 6 --device cpu >"$LOGS/testset-$cases.log" 2>&1 &
      tests+=($!)
    done
    datagen "$(awk -v l="$(left 4.2)" 'BEGIN { printf "%d", l * 60 }')" "$(cores 18)" &
    gen=$!
    train "$(left 3.9)"
    wait "$gen" "${tests[@]}"
    log "test set: $(ls data/testset/*/*.h5 2>/dev/null | wc -l) cases"
    evaluate "$(awk -v l="$(left 0.4)" 'BEGIN { printf "%d", l * 60 }')"
    ;;
  *) echo "unknown phase $PHASE" >&2; exit 2 ;;
esac
pack
log "done"
