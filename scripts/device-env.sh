# Sourced by the scripts that run on a GPU machine (campaign.sh, campaign-gpus.sh, zoo-job.sh,
# gpu-datagen-bench.sh). That machine's python lacks gmsh, scikit-fem, meshio and tqdm: they are
# installed from the wheels carried in .carry/wheels, and gmsh's X/GL libraries come from
# .carry/lib. Expects ROOT (the repository) and PY (the python) to be set.
if [ -d "$ROOT/.carry/lib" ]; then
  export LD_LIBRARY_PATH="$ROOT/.carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export PYTHONUNBUFFERED=1
if ! "$PY" -c "import gmsh, skfem, meshio, tqdm" 2>/dev/null; then
  echo "installing gmsh, scikit-fem, meshio, tqdm from .carry/wheels" >&2
  PIP_BREAK_SYSTEM_PACKAGES=1 "$PY" -m pip install --quiet --no-index \
    --find-links "$ROOT/.carry/wheels" gmsh scikit-fem meshio tqdm
  "$PY" -c "import gmsh, skfem, meshio, tqdm" || { echo "device set-up failed" >&2; exit 1; }
fi
