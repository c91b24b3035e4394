"""The memory budget of the free demo server: every page, 4 sessions, the shipped models.

Streamlit Community Cloud stops an app at about 2.7 GB. ``benchmarks/bench_pages.py`` tours every page with
4 sessions (every heatmap method, every installed model, Score-CAM where offered, the embedding map when
the shared data is present, the Model page for every model) in a fresh process started as the server is
(no MALLOC_* settings); the process must end under 2.0 GB and never peak above 2.5 GB.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@pytest.mark.slow
def test_a_tour_of_every_page_by_four_sessions_fits_the_budget() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "DERMLENS_WEIGHTS_DIR"}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_pages.py"), "--sessions", "4"]
    if SHARED.is_dir():
        cmd += ["--data-root", str(SHARED)]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    found = re.search(r"after the tour: RSS (\d+) MB; peak (\d+) MB", run.stdout)
    assert found, run.stdout[-2000:]
    after, peak = int(found.group(1)), int(found.group(2))
    assert after <= 2000, run.stdout
    assert peak <= 2500, run.stdout
