#!/usr/bin/env bash
# Create .venv and install the pinned requirements (runtime, or dev with "dev").
# Re-runs are no-ops until a requirements file changes.
set -euo pipefail
cd "$(dirname "$0")/.."
which_set=${1:-runtime}
req=requirements.txt
[ "$which_set" = dev ] && req=requirements-dev.txt

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY=$candidate; break
    fi
  done
fi
[ -n "$PY" ] || { echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.installed-$which_set-$(cat requirements*.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "Installing $req into .venv …"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
  find_links=()
  # A local CPU build of torch, where the machine has one, keeps CUDA packages out.
  [ -d /opt/wheels ] && find_links=(--find-links /opt/wheels)
  mkdir -p var
  UV_CACHE_DIR="${UV_CACHE_DIR:-$PWD/var/uv-cache}" .venv/bin/uv pip install --quiet \
    --python .venv/bin/python "${find_links[@]}" -r "$req"
  .venv/bin/python - <<'PY'
import torch
if torch.version.cuda is not None:
    print(f"note: torch {torch.__version__} is a CUDA build; CPU inference still works")
PY
  touch "$stamp"
fi
