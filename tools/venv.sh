#!/usr/bin/env bash
# Create ./.venv with Python 3.10 and the pinned packages (idempotent).
# paddlelite 2.13rc0 has wheels only up to CPython 3.10, so 3.10 it must be.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  for candidate in "${PYTHON:-}" python3.10; do
    [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && { echo "$candidate"; return; }
  done
  if command -v pyenv >/dev/null 2>&1; then   # pyenv shims refuse versions that are not selected
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)'); do
      echo "$(pyenv root)/versions/$v/bin/python3.10"; return
    done
  fi
  for p in "$HOME"/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10; do
    [ -x "$p" ] && { echo "$p"; return; }
  done
  echo "error: Python 3.10 not found (paddlelite 2.13rc0 needs CPython <= 3.10). Set PYTHON=/path/to/python3.10." >&2
  exit 1
}

stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  py=$(find_python)
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  # [cluster] (Ray Serve, for `edge serve --ray` and its tests) adds about 350 MB and 40 s
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[lite,export,serve,cluster,dev]"
  touch "$stamp"
fi
