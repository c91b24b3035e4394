#!/usr/bin/env bash
# Start DermLens on the shipped default model: bash scripts/run_app.sh [streamlit options]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv requirements.txt
# fileWatcherType none: Streamlit's watcher walks torch's lazy modules and crashes (streamlit issue 10992).
exec .venv/bin/python -m streamlit run streamlit_app.py --server.fileWatcherType none "$@"
