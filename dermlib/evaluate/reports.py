"""Reading a model's evaluation for display: the card's ``metrics`` and an optional ``evaluation.json``.

The Model page never needs the dataset: the training CLI stores the test-split report in the card's
``metrics``; a fuller record may sit beside the card as ``evaluation.json``, either one report or a
mapping of split name -> report (e.g. ``{"val": {...}, "test": {...}}``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVALUATION_FILE = "evaluation.json"


def is_report(obj: Any) -> bool:
    """True when ``obj`` looks like a dict from :func:`dermlib.evaluate.evaluation_report`."""
    return isinstance(obj, dict) and "top1_accuracy" in obj and "n" in obj


def model_reports(card: Any) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Collect the evaluation reports of a model card.

    Args:
        card: A model card (needs ``metrics`` and ``path``; other attributes are not read).

    Returns:
        ``(reports, problems)``: reports by split name, the card's own ``metrics`` first as ``"test"``
        (an entry of ``evaluation.json`` with the same name replaces it, being the fuller record), and
        human-readable problems found on the way (an unreadable ``evaluation.json``).
    """
    reports: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    metrics = getattr(card, "metrics", None)
    if is_report(metrics):
        reports["test"] = metrics
    folder = getattr(card, "path", None)
    path = Path(folder) / EVALUATION_FILE if folder else None
    if path is not None and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{path} could not be read ({exc}); showing the card's metrics only.")
            data = None
        if is_report(data):
            reports["test"] = data
        elif isinstance(data, dict):
            for name, value in data.items():
                if is_report(value):
                    reports[str(name)] = value
    return reports, problems


def model_facts(card: Any) -> dict[str, str]:
    """What the model is, as label -> text (architecture, classes, input, preprocessing, calibration)."""
    pre = dict(getattr(card, "preprocessing", None) or {})
    calibration = dict(getattr(card, "calibration", None) or {})
    classes = list(getattr(card, "classes", None) or [])
    facts: dict[str, str] = {
        "Model id": str(getattr(card, "id", "")),
        "Architecture": str(getattr(card, "architecture_label", None) or getattr(card, "architecture", "")),
        "Task": str(getattr(card, "task", "") or "classification"),
        "Classes": str(len(classes)),
    }
    members = list(getattr(card, "members", None) or [])
    if members:
        total = sum(float(m.get("weight", 1.0)) for m in members) or 1.0
        facts["Ensemble members"] = "; ".join(
            f"{m['architecture']}"
            + (f" at {m['input_size'][1]} px" if m.get("input_size") else "")
            + f", weight {float(m.get('weight', 1.0)) / total:.2f}"
            for m in members)
        facts["Ensemble output"] = "weighted mean of the members' logits, then one calibration temperature"
    size = pre.pop("input_size", None)
    if isinstance(size, list | tuple) and len(size) == 3:
        facts["Input size"] = f"{size[1]} x {size[2]} pixels, {size[0]} channels"
    for key, label in (("interpolation", "Resize interpolation"), ("crop_pct", "Centre crop")):
        if key in pre:
            value = pre.pop(key)
            facts[label] = f"{float(value):.0%} of the image" if key == "crop_pct" else str(value)
    for key in ("mean", "std"):
        if key in pre:
            facts[f"Normalisation {key}"] = ", ".join(f"{float(v):.3f}" for v in pre.pop(key))
    if pre.get("crop_mode") == "center":
        pre.pop("crop_mode")  # timm's default: "Centre crop" above already says it
    if isinstance(pre.get("mask"), dict):
        facts["Masked before the model"] = _mask_text(pre.pop("mask"))
    if isinstance(pre.get("lesion_crop"), dict):
        crop = pre.pop("lesion_crop")
        state = "on by default" if crop.get("default") else "off by default (a switch on the Diagnose page)"
        text = f"{state}; outline by {crop.get('model', 'a segmentation model')}"
        decision = (crop.get("measured") or {}).get("decision")
        facts["Crop to the lesion first"] = text + (f". {decision[:1].upper()}{decision[1:]}." if decision else ".")
    for key, value in pre.items():
        # Anything a newer card adds: readable, never a raw Python dict.
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
        facts[f"Preprocessing {key.replace('_', ' ')}"] = shown
    if "temperature" in calibration:
        facts["Calibration temperature"] = f"{float(calibration['temperature']):.3f}"
    if calibration.get("min_top1_probability") is not None:
        facts["Uncertain below top-1 probability"] = f"{float(calibration['min_top1_probability']):.2f}"
    if calibration.get("max_normalized_entropy") is not None:
        facts["Uncertain above normalised entropy"] = f"{float(calibration['max_normalized_entropy']):.2f}"
    return facts


def _mask_text(mask: dict[str, Any]) -> str:
    """A card's preprocessing mask in words: each box as ranges of the width and height, the fill, why."""
    boxes = []
    for box in mask.get("boxes") or []:
        try:
            x0, y0, x1, y1 = (float(v) for v in box)
        except (TypeError, ValueError):
            return str(mask)  # not a valid card (load_card refuses it), but this page must not fail on it
        boxes.append(f"{x0:.0%}-{x1:.0%} of the width, {y0:.0%}-{y1:.0%} of the height")
    fill = {"median": "the photo's median colour", "grey": "mid grey"}.get(str(mask.get("fill")),
                                                                          str(mask.get("fill")))
    where = "; ".join(boxes) + " (from the top left)"
    if mask.get("reason"):  # the card's reason says how and why it is filled, in its trainer's words
        return f"{where}. {mask['reason']}"
    return f"{where}, filled with {fill} in training and at inference"


def class_rows(card: Any) -> list[dict[str, str]]:
    """One row per output class: id, name and risk group, in output order."""
    return [
        {"id": str(c.id), "name": str(c.name), "risk group": str(c.risk_group)}
        for c in getattr(card, "classes", None) or []
    ]


def agreement_rows(card: Any) -> list[dict[str, Any]]:
    """How an ensemble's accuracy depends on how many of its networks agree with it, one row per count.

    Read from ``calibration.member_agreement.by_agreeing`` (measured on the validation split when the
    ensemble was calibrated), most agreement first, counts never seen left out. Empty for a single network
    or a card calibrated before the counts were stored.
    """
    stats = (getattr(card, "calibration", None) or {}).get("member_agreement") or {}
    rows = [r for r in stats.get("by_agreeing") or [] if r.get("n")]
    members = len(getattr(card, "members", None) or [])
    total = sum(int(r["n"]) for r in rows)
    if not rows or not members or not total:
        return []
    return [{"networks agreeing with the ensemble": f"{int(r['agreeing'])} of {members}",
             "validation photos": int(r["n"]),
             "share of photos": f"{int(r['n']) / total:.0%}",
             "ensemble accuracy": f"{float(r['accuracy']):.0%}"}
            for r in sorted(rows, key=lambda r: -int(r["agreeing"]))]


#: Training entries that reproduce the model: shown in full as commands, not as table cells.
_COMMAND_KEYS = ("args", "command", "lineage")


def training_commands(card: Any) -> str | None:
    """The commands that trained the model, in order, as one copyable listing (None if the card has none).

    A card's ``training.lineage`` (every step, for a model trained in several runs) wins over its single
    ``training.command``; a card with only ``training.args`` gets those arguments as JSON. A lineage entry
    that is a note rather than a command becomes a comment.
    """
    training = dict(getattr(card, "training", None) or {})
    steps = [str(step) for step in training.get("lineage") or []]
    if not steps and training.get("command"):
        steps = [str(training["command"])]
    if steps:
        return "\n\n".join(step if step.startswith(("python", "dermlens", "bash", "#")) else f"# {step}"
                           for step in steps)
    if isinstance(training.get("args"), dict):
        return "# the training arguments (also in args.json)\n" + json.dumps(training["args"], indent=2,
                                                                            ensure_ascii=False)
    return None


def training_facts(card: Any) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """How the model was trained: scalar facts (label -> text) and count tables (name -> {key: count}).

    Reads ``card.training``: any scalar entry becomes a fact; ``data_summary`` gives ``n_images`` and
    the count mappings (``class_counts``, ``fitzpatrick_counts``, ``split_counts``, ...).
    """
    training = dict(getattr(card, "training", None) or {})
    summary = training.pop("data_summary", None) or {}
    for key in _COMMAND_KEYS:  # shown whole by training_commands: a table cell would cut them off
        training.pop(key, None)
    facts: dict[str, str] = {}
    counts: dict[str, dict[str, Any]] = {}
    for key, value in training.items():
        if isinstance(value, dict):
            if value and all(isinstance(v, int | float) for v in value.values()):
                counts[key.replace("_", " ")] = value
            else:
                facts[key.replace("_", " ").capitalize()] = "; ".join(
                    f"{k.replace('_', ' ')}: {v}" for k, v in value.items())
        elif isinstance(value, list):
            facts[key.replace("_", " ").capitalize()] = "; ".join(str(v) for v in value)
        elif value is not None:
            facts[key.replace("_", " ").capitalize()] = str(value)
    if isinstance(summary, dict):
        for key, value in summary.items():
            if isinstance(value, dict):
                counts[key.replace("_", " ")] = value
            elif value is not None:
                facts[key.replace("_", " ").capitalize()] = str(value)
    return facts, counts


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.1%}"


def selective_line(report: dict[str, Any]) -> str | None:
    """How often the model answers with the app's uncertainty thresholds, and how well (None without them)."""
    selective = report.get("selective")
    if not selective:
        return None
    return (f"With the app's uncertainty thresholds the model answers **{_pct(selective.get('coverage'))}** of "
            f"test images with **{_pct(selective.get('accuracy'))}** accuracy; on the images it flags as "
            f"uncertain its accuracy is {_pct(selective.get('accuracy_abstained'))}.")


def _own_macro_f1(report: dict[str, Any]) -> float | None:
    """Macro-F1 over the classes that occur in this report's photos (a source labels only some classes)."""
    rows = [r for r in report.get("per_class") or [] if isinstance(r, dict) and r.get("support")]
    return sum(float(r["f1"]) for r in rows) / len(rows) if rows else None


def source_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per data source of a combined model's test report (empty for a single-source model).

    Each source is scored with all of the model's classes, so an answer naming another source's class is
    wrong; "macro-F1, own classes" averages over the classes that source labels. "top-1, sub-types folded"
    counts a sub-type class (e.g. acne vulgaris) as its parent (acne), see :data:`dermlib.evaluate.slices.SUBTYPE_OF`.
    """
    by_source = report.get("by_source") or {}
    folded = report.get("by_source_categories") or {}
    rows = []
    for source, rep in by_source.items():
        if not isinstance(rep, dict):
            continue
        row = {"source": _source_title(source), "test photos": int(rep.get("n", 0)),
               "top-1": _pct(rep.get("top1_accuracy")),
               "top-3": _pct(rep.get("top3_accuracy"))}
        own = _own_macro_f1(rep)
        row["macro-F1, own classes"] = "n/a" if own is None else f"{own:.3f}"
        row["weighted F1"] = f"{float(rep.get('weighted_f1', 0.0)):.3f}"
        if folded:  # acne vulgaris counted as acne, malignant melanoma as melanoma, ...
            row["top-1, sub-types counted as their condition"] = _pct((folded.get(source) or {}).get("top1_accuracy"))
        rows.append(row)
    return rows


def skin_type_coverage_line(report: dict[str, Any], skin_tone: dict[str, Any] | None = None) -> str | None:
    """Which test photos carry a skin type, for a report whose photos are not all typed; None when all are.

    A combined model's skin-type table covers only the sources that label skin type, so the table alone
    would let a reader take it for the whole model. The line names what is missing and, when the model
    folder's ``skin_tone.json`` is given, what the colour estimate tried as a stand-in measured.

    Args:
        report: One split's evaluation report.
        skin_tone: The model folder's ``skin_tone.json`` (see ``benchmarks/skin_tone_agreement.py``), if any.
    """
    by_type = report.get("by_skin_type") or {}
    unknown, total = int(by_type.get("n_unknown") or 0), int(report.get("n") or 0)
    if not unknown or unknown >= total:  # all typed, or none (the page then says so on its own)
        return None
    untyped = [_source_title(name) for name, rep in (report.get("by_source") or {}).items()
               if isinstance(rep, dict) and rep.get("n")
               and int((rep.get("by_skin_type") or {}).get("n_unknown") or 0) == int(rep["n"])]
    line = f"Skin type is known for {total - unknown:,} of the {total:,} test photos; the other {unknown:,} have none"
    line += f" (every {' and '.join(untyped)} photo among them)." if untyped else "."
    if untyped:
        line += f" The table below covers none of the {' and '.join(untyped)} photos."
    agreement = (skin_tone or {}).get("agreement") or {}
    if agreement.get("group_accuracy") is not None:
        phone = (skin_tone or {}).get("agreement_phone_photos") or {}
        verdict = "passed" if agreement.get("reliable") else "failed"
        line += (f" A skin tone estimated from the photo's colour (ITA) was measured as a stand-in and {verdict} "
                 f"its reliability rule: it matched the annotated group on {agreement['group_accuracy']:.0%} of "
                 f"{int(agreement.get('n') or 0):,} Fitzpatrick17k photos")
        if phone.get("group_accuracy") is not None:
            line += f" and {phone['group_accuracy']:.0%} of {int(phone.get('n') or 0):,} PAD-UFES-20 smartphone photos"
        line += "."
    return line


def _source_title(name: str) -> str:
    """A data source's short title ("DermNet NZ" for ``dermnet-nz``), or its id when it is not registered."""
    from dermlib.data.registry import DATASETS

    adapter = DATASETS.get(name)
    return adapter.title.split(" (")[0] if adapter is not None else name


def frequent_mistakes(report: dict[str, Any], class_names: dict[str, str] | None = None,
                      limit: int = 10) -> list[dict[str, Any]]:
    """The report's most frequent confusions, largest first, as table rows.

    A confusion matrix of 38 classes cannot be read on a phone, and even on a wide screen the few cells that
    matter hide among 1,400: the list names them.

    Args:
        report: An evaluation report with ``confusion_matrix`` (``labels`` and ``matrix``, rows = truth).
        class_names: Display name per class id.
        limit: How many rows at most.

    Returns:
        Rows with the true class, what it was taken for, how many test photos, and that share of the true
        class's photos; empty when the report has no matrix or no mistake.
    """
    cm = report.get("confusion_matrix") or {}
    ids, matrix = cm.get("labels") or [], cm.get("matrix") or []
    names = class_names or {}
    cells = []
    for i, row in enumerate(matrix):
        support = sum(row)
        cells += [(int(count), i, j, support) for j, count in enumerate(row) if j != i and count]
    cells.sort(key=lambda c: (-c[0], -c[0] / c[3], c[1], c[2]))
    return [{"photos of": names.get(ids[i], ids[i]), "taken for": names.get(ids[j], ids[j]),
             "test photos": count, "share of its photos": f"{count / support:.0%}"}
            for count, i, j, support in cells[:limit]]


def source_alert_line(report: dict[str, Any]) -> str | None:
    """What the urgency line does on each source's test photos alone, or None when no source was scored.

    A combined model is compared with a single-source one on that source's photos (the 21-condition model on
    Fitzpatrick17k's), so the whole test split's sensitivity would not be the figure to set beside it. Read
    from ``by_source[source]["malignant_alert"]`` (:func:`dermlib.train.finalize.add_alert_by_source`).
    """
    parts = []
    for source, rep in (report.get("by_source") or {}).items():
        scored = rep.get("malignant_alert") if isinstance(rep, dict) else None
        if not isinstance(scored, dict) or not scored.get("n_malignant"):
            continue
        rule = scored.get("with_alert") or {}
        n_bad, n_other = int(scored["n_malignant"]), int(scored.get("n_other") or 0)
        caught = round(float(rule.get("sensitivity", 0.0)) * n_bad)
        cleared = round(float(rule.get("specificity", 0.0)) * n_other)
        parts.append(f"{_source_title(source)}: it names a malignant class for {caught} of {n_bad} malignant photos "
                     f"({_pct(rule.get('sensitivity'))}) and for {n_other - cleared} of {n_other} others "
                     f"(specificity {_pct(rule.get('specificity'))})")
    if not parts:
        return None
    return "The urgency line, with the card's malignant alert, on each source's test photos alone. " + "; ".join(
        parts) + "."


def pair_line(report: dict[str, Any]) -> str | None:
    """The eczema-versus-psoriasis slice as one sentence, or None when the report has none."""
    pair = (report.get("eczema_vs_psoriasis") or {}).get("all")
    if not isinstance(pair, dict) or not pair.get("n"):
        return None
    ci = pair.get("rate_ci95") or [None, None]
    by_class = pair.get("by_class") or {}
    return (f"Eczema or psoriasis? On the {pair['n']} test photos of either, the right one of the two is ranked "
            f"higher on {pair.get('correct')} ({_pct(pair.get('rate'))}, 95% interval {_pct(ci[0])}-{_pct(ci[1])}; "
            f"eczema {_pct(by_class.get('eczema'))}, psoriasis {_pct(by_class.get('psoriasis'))}).")


def malignant_alert_line(card: Any, report: dict[str, Any]) -> str | None:
    """The card's malignant alert and what the urgency line does on the test photos with it, or None.

    The alert is fitted on validation (``calibration.malignant_alert``); the test figures are the report's
    ``malignant_alert`` (:func:`dermlib.knowledge.urgency.score_malignant_alert`).
    """
    from dermlib.knowledge.urgency import URGENCY_MIN_PROBABILITY as least

    alert = (getattr(card, "calibration", None) or {}).get("malignant_alert")
    scored = report.get("malignant_alert")
    if not isinstance(alert, dict) or not isinstance(scored, dict):
        return None

    def rule(key: str) -> str:
        part = scored.get(key) or {}
        return f"sensitivity {_pct(part.get('sensitivity'))}, specificity {_pct(part.get('specificity'))}"

    if alert.get("threshold") is None:
        return (f"**Malignant alert: not needed.** The Diagnose page's urgency line names a malignant class in the "
                f"top 3 with at least {least:.0%} for {_pct(alert.get('val_sensitivity'))} of the validation split's "
                f"{alert.get('n_malignant')} malignant photos, at least the {float(alert['target_sensitivity']):.0%} "
                f"an alert would be fitted to reach. On the {scored.get('n_malignant')} malignant and "
                f"{scored.get('n_other')} other test photos: {rule('top3_rule_only')}.")
    return (f"**Malignant alert.** The Diagnose page's urgency line also names the most likely malignant class "
            f"when the malignant classes together reach {float(alert['threshold']):.1%}, a threshold chosen on "
            f"the validation split so that the line names a malignant class for at least "
            f"{float(alert['target_sensitivity']):.0%} of its {alert.get('n_malignant')} malignant photos. "
            f"On the {scored.get('n_malignant')} malignant and {scored.get('n_other')} other test photos: "
            f"{rule('with_alert')}; without the alert (a malignant class in the top 3 with at least {least:.0%}) "
            f"{rule('top3_rule_only')}.")
