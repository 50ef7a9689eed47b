#!/usr/bin/env bash
# Smoke test of a built bundle: it must start, mesh the default cylinder on a coarse mesh, run a
# few reference-solver steps, write a screenshot and an export, and quit with status 0.
#   packaging/smoke-test.sh dist/slipstream/slipstream
set -euo pipefail
BUNDLE="${1:?usage: smoke-test.sh PATH/TO/slipstream}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/coarse.json" <<'JSON'
{"name": "smoke", "obstacles": [{"shape": "circle", "center": [0.2, 0.2], "radius": 0.05}],
 "mesh": {"size": 0.06, "obstacle_size": 0.015}, "time": {"dt": 0.01, "steps": 5}}
JSON
run=("$BUNDLE" --scenario "$WORK/coarse.json" --model reference --steps 5
     --screenshot "$WORK/shot.png" --export "$WORK/out" --quit)
if [ -z "${DISPLAY:-}" ]; then
  xvfb-run -a -s "-screen 0 1280x800x24" "${run[@]}"
else
  "${run[@]}"
fi
test -s "$WORK/shot.png" || { echo "smoke test: no screenshot" >&2; exit 1; }
test -s "$WORK/out/run.pvd" || { echo "smoke test: no export" >&2; exit 1; }
echo "smoke test passed: $BUNDLE"
