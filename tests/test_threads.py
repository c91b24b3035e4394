"""Thread count: affinity, cgroup CPU quota (v1 and v2), and the environment override."""

from __future__ import annotations

from pathlib import Path

import pytest

from dermlib.models import threads


def _v2(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(text)
    return root


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    assert threads.cgroup_cpu_quota(_v2(tmp_path / "a", "150000 100000\n")) == pytest.approx(1.5)
    assert threads.cgroup_cpu_quota(_v2(tmp_path / "b", "max 100000\n")) is None
    assert threads.cgroup_cpu_quota(tmp_path / "missing") is None


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    cpu = tmp_path / "cpu"
    cpu.mkdir()
    (cpu / "cpu.cfs_quota_us").write_text("50000\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_cpu_quota(tmp_path) == pytest.approx(0.5)
    (cpu / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads.cgroup_cpu_quota(tmp_path) is None


def test_default_follows_the_quota_and_never_drops_below_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "affinity_cpus", lambda: 8)
    assert threads.default_threads(_v2(tmp_path / "q2", "200000 100000")) == 2
    assert threads.default_threads(_v2(tmp_path / "q0", "7800 100000")) == 1  # 0.078 CPU: Community Cloud's floor
    assert threads.default_threads(_v2(tmp_path / "none", "max 100000")) == 8


def test_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    quota = _v2(tmp_path / "q", "100000 100000")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    assert threads.default_threads(quota) == 3
    monkeypatch.setenv(threads.THREADS_ENV, "2")
    assert threads.default_threads(quota) == 2
    monkeypatch.setenv(threads.THREADS_ENV, "many")
    with pytest.raises(ValueError, match="DERMLENS_THREADS"):
        threads.default_threads(quota)


def test_prediction_graph_leaves_a_cpu_to_the_scope_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (threads.THREADS_ENV, "OMP_NUM_THREADS", threads.SCOPE_PARALLEL_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "affinity_cpus", lambda: 4)
    none = _v2(tmp_path / "none", "max 100000")
    assert threads.scope_check_beside(none) and threads.prediction_threads(none) == 3
    one = _v2(tmp_path / "one", "100000 100000")  # one CPU: the check runs in line, the graph takes it all
    assert not threads.scope_check_beside(one) and threads.prediction_threads(one) == 1
    monkeypatch.setenv(threads.SCOPE_PARALLEL_ENV, "0")
    assert threads.prediction_threads(none) == 4
    monkeypatch.setenv(threads.SCOPE_PARALLEL_ENV, "1")
    monkeypatch.setenv(threads.THREADS_ENV, "2")  # a count set by hand is used as it is
    assert threads.prediction_threads(none) == 2
