#!/usr/bin/env bash
# Makes the README's and user guide's screenshots with the app's scripted mode (never by hand).
# Runs under Xvfb; the backend is the shipped default model when there is one, else the reference
# solver. Override with MODEL=reference|NAME, STEPS=N (cylinder) and SHORT_STEPS=N (others), e.g.
#   MODEL=reference STEPS=500 scripts/make-screenshots.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
OUT="$ROOT/docs/images"
mkdir -p "$OUT"
if [ -z "${MODEL:-}" ]; then
  if [ -f assets/models/default.json ]; then MODEL=default; else MODEL=reference; fi
fi
STEPS="${STEPS:-500}"  # the DFG cylinder sheds vortices from t ≈ 4 s at dt = 0.01
SHORT_STEPS="${SHORT_STEPS:-150}"  # enough for a wake behind the other presets
SCENARIOS=assets/scenarios

shot() {  # shot NAME SCENARIO STEPS [extra slipstream arguments...]
  local name=$1 scenario=$2 steps=$3
  shift 3
  echo "== $name ($scenario, $MODEL, $steps steps)"
  xvfb-run -a -s "-screen 0 1600x1000x24" "$PY" -m app --scenario "$scenario" --model "$MODEL" \
    --steps "$steps" --screenshot "$OUT/$name.png" --size 1400x900 --quit "$@"
}

shot cylinder-vorticity "$SCENARIOS/dfg-2d-2.json" "$STEPS" --field vorticity \
  --window-screenshot "$OUT/window.png"
shot naca2412-streamlines "$SCENARIOS/naca2412-10deg.json" "$SHORT_STEPS" --overlay streamlines
shot tandem-pressure "$SCENARIOS/tandem-cylinders.json" "$SHORT_STEPS" --field p
shot three-obstacles-mesh "$SCENARIOS/three-obstacles.json" 1 --edges
echo "screenshots in $OUT"
