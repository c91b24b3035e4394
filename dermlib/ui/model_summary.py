"""Short, honest summaries of a model card for the Diagnose page."""

from __future__ import annotations

from dermlib.inference import Prediction
from dermlib.models import ModelCard


def measured_limits(card: ModelCard) -> list[str]:
    """Plain-language lines on what the model was measured to do, and what it cannot do."""
    lines: list[str] = []
    training = card.training
    if training.get("dataset"):
        lines.append(
            f"Trained on {training.get('dataset_name', training['dataset'])} "
            f"({training.get('licence', 'licence in the model card')}); it knows only these "
            f"{card.num_classes} classes: " + ", ".join(c.name for c in card.classes) + "."
        )
    m = card.metrics or {}
    if "top1_accuracy" in m:
        n = m.get("n", "?")
        lines.append(
            f"On {n} held-out test images: top-1 accuracy {m['top1_accuracy']:.0%}"
            + (f", top-3 {m['top3_accuracy']:.0%}" if "top3_accuracy" in m else "")
            + (f", balanced accuracy {m['balanced_accuracy']:.0%}" if "balanced_accuracy" in m else "")
            + "."
        )
    groups = (m.get("by_skin_type") or {}).get("groups") or {}
    parts = [
        f"{name}: {g['top1_accuracy']:.0%} (n={g['n']})"
        for name, g in groups.items()
        if isinstance(g, dict) and g.get("n") and "top1_accuracy" in g
    ]
    if parts:
        lines.append("Top-1 accuracy by Fitzpatrick skin type: " + "; ".join(parts) + ".")
    if m.get("n"):
        from dermlib.evaluate import limitation_notes

        lines.extend(limitation_notes(m))
    lines.extend(card.limitations)
    if not lines:
        lines.append("This model's card holds no measured metrics: treat its output with extra caution.")
    return lines


def condition_links(prediction: Prediction, card: ModelCard) -> list[str]:
    """Markdown links to the Disease Library for each top-k class that has an entry."""
    try:
        from dermlib.knowledge import condition_link
    except ImportError:
        return []
    dataset = card.training.get("dataset")
    links = []
    for score in prediction.top_k:
        url = condition_link(score.label, dataset)
        if url:
            links.append(f"[{score.name}]({url})")
    return links
