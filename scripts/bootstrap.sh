#!/usr/bin/env bash
# Creates (once) the project's virtual environment in .venv and the system libraries Qt/VTK/gmsh
# need. Sourced by run-app and run-tests so each works on a fresh Debian/Ubuntu machine.
# SLIPSTREAM_TORCH picks the torch requirement: the default pin is the CPU build that CI uses;
# SLIPSTREAM_TORCH=torch installs PyPI's CUDA build on Linux (several GB) for NVIDIA GPUs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
TORCH_REQ="${SLIPSTREAM_TORCH:-torch==2.13.0}"
SYSTEM_PKGS=(xvfb xauth libgl1 libegl1 libglu1-mesa libgl1-mesa-dri libxrender1 libxcursor1 libxft2
  libxinerama1 libfontconfig1 libdbus-1-3 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1
  libxcb-image0 libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xinerama0 libxcb-cursor0
  libxcb-xkb1 python3-venv)

missing_system_pkgs() {
  command -v dpkg-query >/dev/null || return 0
  for p in "${SYSTEM_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

install_system_pkgs() {
  local missing
  missing=$(missing_system_pkgs)
  [ -z "$missing" ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if command -v apt-get >/dev/null && { [ -z "$sudo" ] || command -v sudo >/dev/null; }; then
    echo "slipstream: installing system libraries: $(echo $missing | tr '\n' ' ')" >&2
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "slipstream: please install these system packages: $missing" >&2
  fi
}

install_python_env() {
  local stamp="$VENV/.slipstream-installed"
  local want
  want="$(cat "$ROOT/pyproject.toml" | sha1sum | cut -c1-12) $TORCH_REQ"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  echo "slipstream: creating the Python environment in .venv (first use only)" >&2
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # torch first, so the project's unpinned "torch" requirement is already satisfied.
  "$VENV/bin/python" -m pip install -q "$TORCH_REQ"
  "$VENV/bin/python" -m pip install -q -e "$ROOT[test]"
  echo "$want" >"$stamp"
}

install_system_pkgs
install_python_env
