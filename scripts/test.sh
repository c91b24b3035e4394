#!/usr/bin/env bash
# Install what the tests need (Python packages in .venv, Debian's chromium for the browser test) and run
# the linter and the whole test suite: bash scripts/test.sh [pytest options]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv requirements-dev.txt
if [ ! -x /usr/bin/chromium ] || ! command -v pdftotext >/dev/null; then
  echo ">> installing Debian's chromium (browser test) and poppler-utils (PDF report test)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium poppler-utils >/dev/null; } \
    || echo ">> could not install chromium / poppler-utils: the browser and PDF-rendering tests will be skipped"
fi
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
