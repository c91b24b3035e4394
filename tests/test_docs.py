"""The project's Markdown documents link only to files that exist, and the README gives CI's test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _relative_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)  # code is not linked
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:|#", t)]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path: Path) -> None:
    broken = [t for t in _relative_links(path) if not (path.parent / t.split("#")[0]).exists()]
    assert not broken, f"{path.name} links to files that do not exist: {broken}"


def test_link_pattern_reads_relative_and_skips_urls(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("[a](docs/A.md) ![b](img.png) [c](https://x.org/y) [d](#top) [e](B.md#part)\n"
                   "```\n[f](not/a/link.md)\n```\n", encoding="utf-8")
    assert _relative_links(doc) == ["docs/A.md", "img.png", "B.md#part"]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash scripts/test.sh" in readme
    assert "scripts/test.sh" in ci
    assert "bash scripts/run_app.sh" in readme


def _shipped_cards(kind: str) -> list:
    from dermlib.models import scan_models

    cards, _ = scan_models(REPO / "weights", kind=kind)
    if not cards:
        pytest.skip("no shipped models in weights/")
    return cards


def test_readme_model_table_is_the_cards() -> None:
    """The README's headline table is what `dermlib models --markdown` prints from the shipped cards."""
    from dermlib.cli import _markdown_table

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = _markdown_table([c for c in _shipped_cards("all") if not c.is_segmentation]).splitlines()
    assert len(rows) >= 3
    assert [r for r in rows if r not in readme] == []


def test_readme_scope_table_is_the_cards() -> None:
    """The README's scope tables are what `dermlib scope report --markdown` prints: every classifier, as measured."""
    from dermlib.scope.report import comparison_table, markdown_table

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    cards = _shipped_cards("classifier")
    rows = markdown_table(cards).splitlines() + comparison_table(cards).splitlines()
    assert len(rows) >= 6
    assert [r for r in rows if r not in readme] == []
