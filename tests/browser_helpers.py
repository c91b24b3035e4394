"""Helpers for the real-browser tests: a Streamlit server in a subprocess and Chromium's launch options.

The browser is Debian's ``chromium`` package (``apt-get install -y chromium``), driven by Playwright's
sync API; Playwright's own browser download is never needed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
# No network beyond loopback, no background services: the test machine has no internet and 2 cores.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> None:
    """Skip the calling test when Chromium or Playwright is missing (never fail for that)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright Python package is not installed")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StreamlitServer:
    """A running ``streamlit run`` subprocess."""

    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything the server wrote so far (for failure messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def streamlit_server(
    script: str | Path,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 180.0,
) -> Iterator[StreamlitServer]:
    """Start ``streamlit run script`` on a free loopback port, wait until healthy, stop it on exit.

    Args:
        script: The app script, relative to the repository root or absolute.
        log_path: Where the server's stdout and stderr go.
        env: Extra environment variables for the server.
        startup_timeout: Seconds to wait for ``/_stcore/health``.

    Yields:
        The running server.
    """
    port = free_port()
    full_env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", **(env or {})}
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(cmd, cwd=REPO_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    server = StreamlitServer(process, port, log_path)
    try:
        _wait_healthy(server, startup_timeout)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_healthy(server: StreamlitServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    health = f"{server.url}/_stcore/health"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {server.process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(health, timeout=2) as response:
                if response.status == 200 and response.read().strip() == b"ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"streamlit was not healthy after {timeout:.0f} s:\n{server.log()}")
