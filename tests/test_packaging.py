"""`pip install .`: the package's dependencies equal requirements.txt, and the wheel's `dermlens` command works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dermlib.testing import write_tiny_model

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines: list[str]) -> set[str]:
    return {line.strip() for line in lines if line.strip() and not line.strip().startswith("#")}


def test_package_dependencies_equal_the_requirements_file() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert _pins(project["dependencies"]) == _pins((ROOT / "requirements.txt").read_text().splitlines())
    assert project["scripts"]["dermlens"] == "dermlib.cli:main"
    dev = _pins((ROOT / "requirements-dev.txt").read_text().splitlines())
    assert set(project["optional-dependencies"]["openvino"]) <= dev  # the optional engine is tested in CI


@pytest.mark.slow
def test_the_wheel_installs_a_working_dermlens_command(tmp_path: Path) -> None:
    def pip(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]

    wheels, prefix = tmp_path / "wheels", tmp_path / "prefix"
    pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT))
    (wheel,) = wheels.glob("dermlens-*.whl")
    pip("install", "--no-deps", "--no-index", "-q", "--prefix", str(prefix), str(wheel))
    (site,) = prefix.glob("lib/python*/site-packages")
    script = prefix / "bin" / "dermlens"
    assert script.is_file()

    # A folder of its own with a weights/ folder beside it, as a user of the installed package would have.
    work = tmp_path / "work"
    write_tiny_model(work / "weights" / "wheel-tiny", model_id="wheel-tiny", extra={"default": True})
    env = {k: v for k, v in os.environ.items() if k not in ("DERMLENS_WEIGHTS_DIR", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    where = subprocess.run([sys.executable, "-c", "import dermlib; print(dermlib.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout  # the installed copy, not the checkout
    listed = subprocess.run([sys.executable, str(script), "models", "--json"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr[-2000:]
    models = json.loads(listed.stdout)["models"]
    assert [m["id"] for m in models] == ["wheel-tiny"] and models[0]["default"] is True
    # The knowledge base travels with the package.
    count = "from dermlib.knowledge.base import load_knowledge_base as k; print(len(k().conditions))"
    library = subprocess.run([sys.executable, "-c", count], cwd=work, env=env, capture_output=True, text=True,
                             timeout=60)
    assert library.returncode == 0 and int(library.stdout) >= 100, library.stderr[-1000:]
