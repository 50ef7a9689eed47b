#!/usr/bin/env bash
# The DDP scaling check of issue 5 on a 2-GPU machine: configs/ddp-meshgraphnet.json at the same
# global batch on 1 GPU, then on 2 under torchrun; writes both logs and a summary to $OUT.
#
#   OUT=DIR scripts/ddp-compare.sh DATA [EPOCHS]
#
# DATA is a dataset folder (`python -m engine datagen … -o DATA`). Training needs neither gmsh nor
# scikit-fem, so a dataset made on another machine can be carried along instead of generated
# there. EPOCHS (default 8) overrides the config's, so the steady state outlasts start-up.
# BATCH (the global batch, both runs) and COMPILE (true/false) override the config's too.
# The summary's speed-up is the ratio of train_seconds (end to end: loading and featurising the
# data included) and of mean samples/s after the first epoch (the steady state).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$(cd "${1:?usage: OUT=DIR scripts/ddp-compare.sh DATA [EPOCHS]}" && pwd)"
EPOCHS="${2:-8}"
: "${OUT:?set OUT to the folder that receives the logs}"
PY="${PYTHON:-python3}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"
WORK="$(mktemp -d)"
"$PY" - "$WORK/ddp.json" "$EPOCHS" "${BATCH:-}" "${COMPILE:-}" <<'EOF'
import json, sys
config = json.load(open("configs/ddp-meshgraphnet.json"))
config["epochs"] = int(sys.argv[2])
if sys.argv[3]:
    config["batch_size"] = int(sys.argv[3])
if sys.argv[4]:
    config["compile"] = sys.argv[4] == "true"
json.dump(config, open(sys.argv[1], "w"))
EOF
for world in 1 2; do
  launch=("$PY")  # one GPU: a plain process, as a single-GPU user runs it
  [ "$world" -gt 1 ] && launch+=(-m torch.distributed.run --standalone --nproc-per-node "$world")
  "${launch[@]}" -m engine train "$WORK/ddp.json" --data "$DATA" --out "$WORK/w$world" \
    >"$OUT/w$world.log" 2>&1
  cp "$WORK/w$world/log.csv" "$OUT/w$world-log.csv"
  cp "$WORK/w$world/trainer.json" "$OUT/w$world-trainer.json"
done
"$PY" - "$OUT" <<'EOF' | tee "$OUT/summary.json"
import csv, json, sys
from pathlib import Path
out = Path(sys.argv[1])
runs = {}
for world in (1, 2):
    rows = list(csv.DictReader(open(out / f"w{world}-log.csv")))
    steady = [float(r["samples_per_s"]) for r in rows if int(r["epoch"]) >= 1 and r["loss"] != "nan"]
    trainer = json.load(open(out / f"w{world}-trainer.json"))["trainer"]
    runs[world] = {
        "steps": trainer["step"],
        "train_seconds": trainer["train_seconds"],
        "steady_samples_per_s": sum(steady) / len(steady),
        "loss": {r["step"]: float(r["loss"]) for r in rows if r["loss"] != "nan"},
    }
config = json.load(open(out / "w1-trainer.json"))["trainer"]["config"]
print(json.dumps({
    "batch_size": config["batch_size"],
    "compile": config["compile"],
    "speedup_end_to_end": runs[1]["train_seconds"] / runs[2]["train_seconds"],
    "speedup_steady": runs[2]["steady_samples_per_s"] / runs[1]["steady_samples_per_s"],
    "runs": runs,
}, indent=1))
EOF
