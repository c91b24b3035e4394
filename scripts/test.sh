#!/usr/bin/env bash
# Install what the tests need (Python packages in .venv, Debian's chromium for the browser test) and run
# the linter and the whole test suite: bash scripts/test.sh [pytest options]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv requirements-dev.txt
if [ ! -x /usr/bin/chromium ]; then
  echo ">> installing Debian's chromium for the browser test"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
    || echo ">> could not install chromium: the browser test will be skipped"
fi
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
