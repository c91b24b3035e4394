"""External tests: a model scored on another clinic's photos, kept in its card and said in plain words.

A model's test split comes from the same archive as its training photos, so its figures say how it does on
photos like those. An external test scores it on a set it never saw, taken elsewhere with other equipment
(``dermoscopy-melanoma`` on PH2: ISIC archive photos against a Portuguese hospital's dermatoscope), which is
what a user's photo is. ``dermlib evaluate --record-external`` stores a short summary in the card's
``external_tests`` (keyed by dataset name) and the full report in ``evaluation.json`` under ``external``;
:func:`external_test_lines` turns the summary into the sentences the Diagnose page, the Model page and the
PDF report show.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dermlib.errors import DatasetError
from dermlib.evaluate.reports import EVALUATION_FILE

__all__ = ["external_record", "external_summary", "external_test_lines", "lesion_crop_summary", "record_external"]


def external_summary(report: Mapping[str, Any], dataset: str, title: str, command: str = "",
                     lesion_crop: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The few figures of an external test that the card keeps.

    Args:
        report: An evaluation report (:func:`dermlib.train.evaluate.evaluate_model`).
        dataset: The dataset adapter's name (the key in the card).
        title: What the set is, for a person ("PH2, Hospital Pedro Hispano, Portugal").
        command: The command that made the report.
        lesion_crop: The same test with each photo cropped to its lesion first, if measured.

    Returns:
        A JSON-ready dict.
    """
    summary: dict[str, Any] = {
        "dataset": dataset,
        "title": title,
        "n": int(report.get("n") or 0),
        "top1_accuracy": report.get("top1_accuracy"),
        "balanced_accuracy": report.get("balanced_accuracy"),
        "ece": (report.get("calibration") or {}).get("ece"),
        "date": dt.date.today().isoformat(),
    }
    malignant = (report.get("risk_group") or {}).get("malignant")
    if malignant and malignant.get("sensitivity") is not None:
        summary["malignant"] = {k: malignant.get(k) for k in ("n_malignant", "n_other", "sensitivity",
                                                               "specificity", "auc")}
    if report.get("by_dataset_label"):
        summary["by_dataset_label"] = report["by_dataset_label"]
    if command:
        summary["command"] = command
    if lesion_crop:
        summary["lesion_crop"] = lesion_crop_summary(lesion_crop)
    return summary


def lesion_crop_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """The figures kept of the same external test run with each photo cropped to its lesion first."""
    malignant = (report.get("risk_group") or {}).get("malignant") or {}
    return {"segmenter": report.get("lesion_crop"), "balanced_accuracy": report.get("balanced_accuracy"),
            "sensitivity": malignant.get("sensitivity"), "specificity": malignant.get("specificity")}


def record_external(folder: str | Path, summary: Mapping[str, Any], report: Mapping[str, Any],
                    report_key: str | None = None) -> None:
    """Store an external test in a model folder: the summary in the card, the report in evaluation.json.

    Args:
        folder: The model folder.
        summary: From :func:`external_summary`; replaces the card's test of the same dataset.
        report: The full evaluation report.
        report_key: Its key under evaluation.json's ``external`` (default: the summary's dataset).

    Raises:
        DatasetError: The folder holds no card.
    """
    from dermlib.models.card import CARD_FILE, save_card

    folder = Path(folder)
    card_path = folder / CARD_FILE
    if not card_path.is_file():
        raise DatasetError(f"{folder} holds no {CARD_FILE}, so the external test cannot be recorded there.")
    raw = json.loads(card_path.read_text(encoding="utf-8"))
    raw.setdefault("external_tests", {})[summary["dataset"]] = dict(summary)
    save_card(raw, folder)
    evaluation_path = folder / EVALUATION_FILE
    evaluation = json.loads(evaluation_path.read_text(encoding="utf-8")) if evaluation_path.is_file() else {}
    evaluation.setdefault("external", {})[report_key or summary["dataset"]] = dict(report)
    evaluation_path.write_text(json.dumps(evaluation, indent=1) + "\n", encoding="utf-8")


def external_test_lines(tests: Mapping[str, Any] | None) -> list[str]:
    """One plain-language sentence per external test in a card's ``external_tests``.

    Args:
        tests: The card's ``external_tests`` section (None or empty: no lines).

    Returns:
        Sentences, in the section's order.
    """
    lines: list[str] = []
    for test in (tests or {}).values():
        if not isinstance(test, Mapping) or not test.get("n"):
            continue
        title, n = test.get("title") or test.get("dataset", "another set"), int(test["n"])
        malignant = test.get("malignant") or {}
        if malignant.get("sensitivity") is not None and malignant.get("specificity") is not None:
            lines.append(_malignant_line(title, n, malignant, test.get("by_dataset_label") or {}))
        elif test.get("top1_accuracy") is not None:
            lines.append(f"External test on {title} ({n} photos it never saw): top-1 accuracy "
                         f"{test['top1_accuracy']:.0%}.")
    return lines


def _malignant_line(title: str, n: int, malignant: Mapping[str, Any], by_label: Mapping[str, Any]) -> str:
    n_mal, n_other = int(malignant.get("n_malignant") or 0), int(malignant.get("n_other") or 0)
    caught = round(malignant["sensitivity"] * n_mal)
    false_alarms = n_other - round(malignant["specificity"] * n_other)
    text = (f"External test on {title} ({n} photos it never saw): it flagged {caught} of {n_mal} malignant "
            f"lesions as malignant (sensitivity {malignant['sensitivity']:.0%}) but also {false_alarms} of "
            f"{n_other} benign ones (specificity {malignant['specificity']:.0%}")
    parts = _benign_parts(by_label)
    if parts:
        text += "; " + ", ".join(parts)
    text += ")."
    if malignant["specificity"] < 0.7:
        text += (" On photos from a clinic or dermatoscope other than its training archive's, a 'malignant' "
                 "answer from it means much less than its own test figures suggest.")
    return text


def _benign_parts(by_label: Mapping[str, Any]) -> Sequence[str]:
    """"atypical naevus 58 of 64" for each benign label of the set: how many of its photos were called malignant."""
    parts = []
    for label, row in by_label.items():
        answered = (row or {}).get("answered") or {}
        if "malignant" not in answered or row.get("risk_group") == "malignant" or not row.get("n"):
            continue
        name = str(row.get("name") or label.replace("-", " "))
        parts.append(f"{name[:1].lower() + name[1:]} {answered['malignant']} of {row['n']}")
    return parts


def external_record(tests: Mapping[str, Any] | None, class_id: str, class_name: str) -> str | None:
    """How often an answer was right on each external test, beside the test split's record of it.

    Counted from the tests' ``by_dataset_label``: of the set's photos the model answered ``class_id`` first,
    how many had that risk group (a model whose classes are risk groups; other answers are not counted there).

    Returns:
        One sentence (Markdown), or None when no external test counts this answer.
    """
    parts = []
    for test in (tests or {}).values():
        rows = [row for row in ((test or {}).get("by_dataset_label") or {}).values() if isinstance(row, Mapping)]
        answered = sum(int((row.get("answered") or {}).get(class_id, 0)) for row in rows)
        if not answered:
            continue
        right = sum(int(row["answered"].get(class_id, 0)) for row in rows if row.get("risk_group") == class_id)
        name = str(test.get("title") or test.get("dataset")).split(",")[0]
        parts.append(f"on {name}'s photos from another clinic, {right} of its {answered} '{class_name}' answers "
                     f"were right ({right / answered:.0%})")
    if not parts:
        return None
    return f"**Elsewhere:** {'; '.join(parts)}."
