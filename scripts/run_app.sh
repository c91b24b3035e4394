#!/usr/bin/env bash
# Start DermLens on the shipped default model: bash scripts/run_app.sh [streamlit options]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv requirements.txt
# The MALLOC thresholds speed up training but keep a server's freed memory: measured with
# benchmarks/load_test.py (4 sessions, 600 uploads) the server ends ~400 MiB smaller without them.
unset MALLOC_MMAP_THRESHOLD_ MALLOC_TRIM_THRESHOLD_
# fileWatcherType none: Streamlit's watcher walks torch's lazy modules and crashes (streamlit issue 10992).
exec .venv/bin/python -m streamlit run streamlit_app.py --server.fileWatcherType none "$@"
