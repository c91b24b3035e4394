"""Rows of the stored scope figures, shared by the CLI, the Model page and the README table."""

from __future__ import annotations

from typing import Any


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _rate(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("rate") is None:
        return "n/a"
    low, high = entry.get("interval") or (None, None)
    interval = f", 95% CI {low:.0%}-{high:.0%}" if low is not None else ""
    return f"{entry['rate']:.1%} (n={entry['n']}{interval})"


def comparison_rows(section: dict[str, Any]) -> list[dict[str, str]]:
    """One row per compared score (feature set included), as display strings."""
    rows = []
    for name, r in (section.get("comparison") or {}).items():
        rows.append({
            "score": name + (" (shipped)" if name == f"{section.get('score')}@imagenet" else ""),
            "calibration_auroc": _num(r.get("calibration_auroc")),
            "auroc_natural": _num(r.get("auroc_natural")),
            "auroc_wrong_modality": _num(r.get("auroc_wrong_modality")),
            "test_kept": _pct(r.get("test_kept")),
            "natural_refused": _pct(r.get("natural_refused")),
            "wrong_modality_refused": _pct(r.get("wrong_modality_refused")),
        })
    return rows


def headline_rows(section: dict[str, Any]) -> list[tuple[str, str]]:
    """The shipped check's figures on the report halves (label, value)."""
    rep = section.get("report") or {}
    rows = [
        ("In-scope test photos kept", _rate(rep.get("in_scope_test_kept"))),
        ("Natural photos refused (report half)", _rate(rep.get("natural_refused"))),
        ("AUROC, test photos vs natural photos", _num(rep.get("auroc_natural"))),
        ("Wrong-modality images flagged (report halves)", _rate(rep.get("wrong_modality_flagged"))),
    ]
    for source, entry in (rep.get("wrong_modality_by_source") or {}).items():
        rows.append((f"  {source}", _rate(entry)))
    for source, entry in (rep.get("same_modality_other_sources_kept") or {}).items():
        rows.append((f"Same-modality photos kept: {source}", _rate(entry)))
    rows.append(("Training photos with a quality warning", _rate(rep.get("quality_flagged_train"))))
    return rows


def scope_details(result) -> str:
    """One technical line on why an image was judged out of scope (for a caption under the message)."""
    parts = []
    if result.score is not None and result.threshold is not None:
        side = "above" if result.score > result.threshold else "within"
        parts.append(f"distance to the training photos {result.score:.3f}, {side} the limit {result.threshold:.3f}")
    if result.modality_probability is not None:
        parts.append(f"probability of the other imaging modality {result.modality_probability:.0%}")
    return ("Scope check: " + "; ".join(parts) + ".") if parts else ""


def scope_limit_line(section: dict[str, Any] | None) -> str | None:
    """A plain sentence on what the stored scope check was measured to do, or None without one."""
    if not section:
        return None
    rep = section.get("report") or {}
    natural, kept = rep.get("natural_refused") or {}, rep.get("in_scope_test_kept") or {}
    wrong = rep.get("wrong_modality_flagged") or {}
    if natural.get("rate") is None or kept.get("rate") is None:
        return "An out-of-scope check runs before every diagnosis; its figures were not measured on real data."
    other = "dermoscopy" if (section.get("modality") or {}).get("task", "clinical") != "dermoscopy" else "clinical"
    text = (f"Out-of-scope check, measured on photos kept apart: it refused {natural['rate']:.0%} of "
            f"{natural['n']} ordinary photos with no skin, and kept {kept['rate']:.0%} of the {kept['n']} test photos")
    if wrong.get("rate") is not None:
        text += f"; it flagged {wrong['rate']:.0%} of {wrong['n']} {other} images as the wrong kind of image"
    return text + "."


def markdown_table(cards) -> str:
    """The shipped check of each model as a Markdown table (for the README); models without one say so."""
    rows = ["| model | score (features) | in-scope test photos kept | natural photos refused | AUROC vs natural "
            "| wrong modality flagged | by source |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for card in cards:
        section = card.raw.get("scope")
        if not section:
            rows.append(f"| `{card.id}` | no scope check | | | | | |")
            continue
        rep = section.get("report") or {}
        by_source = "; ".join(f"{s} {_pct(e.get('rate'))} (n={e.get('n')})"
                              for s, e in (rep.get("wrong_modality_by_source") or {}).items())
        rows.append(
            f"| `{card.id}` | {section['score']} (ImageNet Lite0, {section['extractor']['size']} px) "
            f"| {_rate(rep.get('in_scope_test_kept'))} | {_rate(rep.get('natural_refused'))} "
            f"| {_num(rep.get('auroc_natural'))} | {_rate(rep.get('wrong_modality_flagged'))} | {by_source} |")
    return "\n".join(rows)


#: How the comparison names the feature sets a score was computed on.
_FEATURES = {"imagenet": "frozen ImageNet Lite0 ({size} px)", "model-logits": "model's logits",
             "model-features": "model's pooled features"}


def comparison_table(cards) -> str:
    """Every compared score of every model as one Markdown table (for the README): AUROC / natural photos refused.

    A row is a score on one feature set, a column a model; "n/a" where a model was not scored that way (ViM
    needs one linear head, which an ensemble does not have). Models without a stored comparison are left out.
    """
    cards = [c for c in cards if (c.raw.get("scope") or {}).get("comparison")]
    names: list[str] = []
    for card in cards:
        names += [n for n in card.raw["scope"]["comparison"] if n not in names]
    rows = ["| score | features | " + " | ".join(f"`{c.id}`" for c in cards) + " |",
            "| --- | --- |" + " --- |" * len(cards)]
    size = cards[0].raw["scope"].get("extractor", {}).get("size", "?") if cards else "?"
    for name in names:
        score, _, features = name.partition("@")
        cells = []
        for card in cards:
            r = card.raw["scope"]["comparison"].get(name)
            cells.append("n/a" if not r else f"{_num(r.get('auroc_natural'))} / {_pct0(r.get('natural_refused'))}")
        rows.append(f"| {score}{' (shipped)' if _shipped(cards, name) else ''} "
                    f"| {_FEATURES.get(features, features).format(size=size)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _pct0(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _shipped(cards, name: str) -> bool:
    """Whether every model ships this score (the table marks it once, not per cell)."""
    return all(f"{c.raw['scope'].get('score')}@imagenet" == name for c in cards)
