"""Short, honest summaries of a model card for the Diagnose page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dermlib.config import OFFER_ALL_ENV, offer_all_models
from dermlib.models import ModelCard
from dermlib.scope.report import scope_details, scope_limit_line

if TYPE_CHECKING:  # the Diagnose page reads the notes before torch is imported (app start)
    from dermlib.inference import Prediction

__all__ = ["agreement_headline", "condition_links", "diagnose_models", "measured_limits", "member_agreement",
           "plain_uncertainty", "record_rows", "scope_details", "track_record", "withheld_line"]

# Below this many test photos of a class, one photo more or less moves its figures by over 5 points.
FEW_TEST_PHOTOS = 20


def diagnose_models(cards: Sequence[ModelCard]) -> list[ModelCard]:
    """The models the Diagnose picker offers, the default first, then by id.

    A card with ``diagnose.offered: false`` (a benchmark model too heavy for a shared server) is left out unless
    ``DERMLENS_OFFER_ALL_MODELS=1``, or unless nothing else is installed: a user is never left with no model.

    Args:
        cards: Every installed (valid) model card.

    Returns:
        The cards to offer, in picker order.
    """
    ordered = sorted(cards, key=lambda c: (not c.default, c.id))
    if offer_all_models():
        return ordered
    offered = [c for c in ordered if c.diagnose_withheld is None]
    return offered or ordered


def withheld_line(cards: Sequence[ModelCard]) -> str | None:
    """A caption naming the installed models the Diagnose picker leaves out, and why; None when it offers all."""
    offered = {c.id for c in diagnose_models(cards)}
    left_out = [c for c in cards if c.id not in offered]
    if not left_out:
        return None
    parts = "; ".join(f"*{c.name}*: {c.diagnose_withheld}" for c in left_out)
    its, it = ("Its", "it") if len(left_out) == 1 else ("Their", "them")
    return (f"Installed but not offered here: {parts}. {its} measured results are on the Model page. (For whoever "
            f"runs DermLens: setting `{OFFER_ALL_ENV}=1` offers {it} on a server with the memory for {it}.)")


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
            + (f", top-3 {m['top3_accuracy']:.0%}" if "top3_accuracy" in m and card.num_classes > 3 else "")
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
    from dermlib.evaluate.external import external_test_lines

    lines.extend(external_test_lines(card.raw.get("external_tests")))  # another clinic's photos: said early
    if m.get("n"):
        from dermlib.evaluate import limitation_notes

        lines.extend(limitation_notes(m, class_names={c.id: c.name for c in card.classes}))
    if scope_line := scope_limit_line(card.raw.get("scope")):
        lines.append(scope_line)
    lines.extend(card.limitations)
    if not lines:
        lines.append("This model's card holds no measured metrics: treat its output with extra caution.")
    return lines


def track_record(prediction: Prediction, card: ModelCard) -> str | None:
    """How often the model was right on held-out test photos when its first answer was this one's.

    Read from the card's per-class test figures: precision (of the photos it named this class first, how
    many were) and recall (of the photos of this class, how many it named first), given as counts so that a
    class with five test photos is not read like one with two hundred.

    When the first answer is one of a pair the card scores head to head (eczema versus psoriasis, two
    look-alikes treated differently), a second sentence gives that slice: how often the right one of the two
    was ranked higher, for photos of each, and which way the model leans when that is clear. When the card
    holds an external test that counts this answer (another clinic's photos), a last sentence gives how often
    the answer was right there.

    Args:
        prediction: A prediction of this model.
        card: The model's card.

    Returns:
        One or two sentences (Markdown), or None when the card holds no per-class test figures for the first
        answer or the photo is out of the model's scope (its record says nothing about such a photo).
    """
    if not prediction.top_k or not prediction.in_scope:
        return None
    top = prediction.top_k[0]
    counts = _class_counts(card, top.label)
    if counts is None:
        return None
    right, named, support = counts
    head = f"**Its record for {top.name}** on {_split(card)} photos it never trained on: "
    if support == 0:
        return head + f"none of them were {top.name}, so this was not measured."
    if named == 0:
        said = f"it never answered {top.name} first"
    else:
        said = f"when it answered {top.name} first, it was right {right} of {named} times ({right / named:.0%})"
    caught = f"for {right} ({right / support:.0%})" if right else "for none of them"
    text = f"{said}; of the {support} photos that were {top.name}, it answered {top.name} first {caught}."
    if support < FEW_TEST_PHOTOS:
        text += f" With only {support} test photos of this condition, these figures are rough."
    if pair := _pair_record(top.label, card):
        text += " " + pair
    from dermlib.evaluate.external import external_record

    if elsewhere := external_record(card.raw.get("external_tests"), top.label, top.name):
        text += " " + elsewhere
    return head + text


def record_rows(prediction: Prediction, card: ModelCard) -> list[dict[str, str]]:
    """The test record of every listed condition, one row each, for a table beside the first answer's line.

    Args:
        prediction: A prediction of this model.
        card: The model's card.

    Returns:
        Rows with the condition, how often it was right when it answered that condition first, how many of
        the condition's test photos it answered first, and a note when the figures rest on few photos (the
        column left out when no row needs one); empty when the photo is out of scope or the card has no
        per-class figures.
    """
    if not prediction.in_scope:
        return []
    rows: list[dict[str, str]] = []
    for score in prediction.top_k:
        counts = _class_counts(card, score.label)
        if counts is None:
            continue
        right, named, support = counts
        rows.append({
            "condition": score.name,
            "right when answered first": f"{right} of {named} ({right / named:.0%})" if named else "never answered",
            "photos of it answered first": (f"{right} of {support} ({right / support:.0%})" if support
                                            else "none tested"),
            "note": "rough: under 20 photos" if 0 < support < FEW_TEST_PHOTOS else "",
        })
    if not any(row["note"] for row in rows):  # an empty column reads like missing data
        for row in rows:
            del row["note"]
    return rows


def _class_counts(card: ModelCard, label: str) -> tuple[int, int, int] | None:
    """(right, answered first, test photos) of one class from the card's per-class figures, or None."""
    row = next((r for r in (card.metrics or {}).get("per_class") or []
                if isinstance(r, dict) and r.get("class_id") == label), None)
    if row is None or row.get("support") is None or row.get("n_predicted") is None:
        return None
    support = int(row["support"])
    # The photos it was right on are the ones it found: one count (recall x support), read both ways.
    return round(float(row.get("recall") or 0.0) * support), int(row["n_predicted"]), support


def _split(card: ModelCard) -> str:
    split = (card.metrics or {}).get("split")
    return split if isinstance(split, str) else "test"


def _pair_record(label: str, card: ModelCard) -> str | None:
    """The head-to-head slice of the pair holding ``label`` (see :func:`track_record`), or None."""
    slices = (card.metrics or {}).get("eczema_vs_psoriasis") or {}
    pair = slices.get("all") if isinstance(slices, dict) else None
    if not isinstance(pair, dict) or not pair.get("n") or label not in (pair.get("pair") or ()):
        return None
    names = {c.id: c.name for c in card.classes}
    first, second = (names.get(c, c) for c in pair["pair"])
    rates, counts = pair.get("by_class") or {}, pair.get("n_by_class") or {}
    parts = [f"{names.get(c, c)} photos {rates[c]:.0%} (n={counts.get(c)})" for c in pair["pair"]
             if rates.get(c) is not None]
    text = (f"**{first} or {second.lower()}?** On the {pair['n']} test photos of either, it ranked the right one "
            f"of the two higher on {pair.get('correct')} ({float(pair.get('rate') or 0):.0%})")
    text += f": {', '.join(parts)}." if parts else "."
    if len(parts) == 2 and all(counts.get(c) for c in pair["pair"]):
        from dermlib.evaluate.metrics import wilson_interval

        (a, ra), (b, rb) = ((c, float(rates[c])) for c in pair["pair"])
        low_a, high_a = wilson_interval(round(ra * counts[a]), int(counts[a]))
        low_b, high_b = wilson_interval(round(rb * counts[b]), int(counts[b]))
        # A lean is claimed only when the two rates' 95% intervals do not overlap: on a few dozen photos
        # a gap of several points is noise.
        if high_a < low_b or high_b < low_a:
            weak, strong = (a, b) if ra < rb else (b, a)
            text += (f" It mistakes {names.get(weak, weak).lower()} for {names.get(strong, strong).lower()} more "
                     "often than the reverse.")
    return text


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


#: Fewest validation photos behind an "exactly k agreed" accuracy; rarer counts are pooled with lower ones.
MIN_AGREEMENT_PHOTOS = 20


def _agreeing_accuracy(agreeing: int, n: int, rows: list[dict] | None) -> str | None:
    """The validation accuracy of the ensemble when ``agreeing`` of its ``n`` networks agreed with it.

    Rare counts (under :data:`MIN_AGREEMENT_PHOTOS` photos) are pooled with every lower count ("3 or
    fewer"), so the figure never rests on a handful of photos without saying so. None without figures.
    """
    by_k = {int(r["agreeing"]): r for r in rows or [] if r.get("n")}
    if not by_k:
        return None
    exact = by_k.get(agreeing)
    if exact is not None and exact["n"] >= MIN_AGREEMENT_PHOTOS:
        pool, phrase = [exact], f"exactly {agreeing} of {n}"
    else:
        pool, phrase = [r for k, r in by_k.items() if k <= agreeing], f"{agreeing} or fewer of {n}"
    photos = sum(int(r["n"]) for r in pool)
    if not photos:
        return None
    accuracy = sum(float(r["accuracy"]) * int(r["n"]) for r in pool) / photos
    text = (f" On the validation split, when {phrase} networks agreed with the ensemble's top answer "
            f"({photos} photos), it was right on {accuracy:.0%}")
    every = by_k.get(n)
    if every is not None:
        text += f", against {float(every['accuracy']):.0%} when all {n} agreed ({int(every['n'])} photos)"
    return text + "."


def agreement_headline(prediction: Prediction) -> str | None:
    """The ensemble's agreement in a few words, e.g. "4 of 6 networks agree on Eczema"; None for one network."""
    if not prediction.members:
        return None
    n = len(prediction.members)
    agreeing = sum(m.agrees for m in prediction.members)
    top = prediction.top_k[0].name
    if agreeing == n:
        return f"All {n} networks agree on {top}." if n > 2 else f"Both networks agree on {top}."
    if agreeing == 0:
        return f"None of the {n} networks picks {top} on its own: treat this answer with extra caution."
    counted = f"Only 1 of {n} networks picks" if agreeing == 1 else f"{agreeing} of {n} networks pick"
    return f"{counted} {top}: treat this answer with extra caution."


def plain_uncertainty(prediction: Prediction) -> list[str]:
    """Why the model abstains, in words (the thresholds and the entropy stay in :attr:`Prediction.reasons`)."""
    words = []
    for reason in prediction.reasons:
        if reason.startswith("the most likely class"):
            words.append(f"no condition stands out: the most likely one, {prediction.top_k[0].name}, has only "
                         f"{prediction.top_k[0].probability:.0%}")
        elif reason.startswith("the probabilities are spread"):
            words.append("the model is split between several conditions")
        else:
            words.append(reason)
    return words


URGENCY_WORDS = {"urgent": "See a doctor urgently", "soon": "See a doctor soon", "routine": "A routine visit"}


def urgency_line(prediction: Prediction, card: ModelCard) -> tuple[str, str] | None:
    """The result's one urgency line as (level, Markdown), from the Disease Library's "when to see a doctor".

    The most urgent Library entry among the listed classes of at least 10% probability, and the card's
    malignant alert, decide (:func:`dermlib.knowledge.urgency.urgency_for`); None for a photo out of scope or
    with no such entry.
    """
    from dermlib.knowledge.urgency import urgency_for

    urgency, _why = urgency_for(prediction, card)
    if urgency is None:
        return None
    words = URGENCY_WORDS.get(urgency.level, urgency.level)
    return urgency.level, f"**{words}** ({urgency.reason(prediction)}): {urgency.when_to_see_doctor}"


def risk_notes(prediction: Prediction, card: ModelCard) -> list[str]:
    """Notes for the listed classes whose clinical group differs from the dataset's (e.g. premalignant)."""
    by_id = {c.id: c for c in card.classes}
    return [f"**{by_id[s.label].name}: {by_id[s.label].display_risk}.** {by_id[s.label].risk_note}"
            for s in prediction.top_k if s.label in by_id and by_id[s.label].risk_note]


def member_agreement(prediction: Prediction, card: ModelCard | None = None) -> tuple[str, bool] | None:
    """What an ensemble's networks answer on their own, as (Markdown text, they disagree).

    None for a single network. Disagreement is shown as a reason for extra caution; it does not change
    the abstention rule, whose thresholds were measured on the validation split. When the card holds the
    validation figures (``calibration.member_agreement``), the text quotes them: for a disagreement, the
    accuracy measured when as many networks agreed with the ensemble as agree now.
    """
    if not prediction.members:
        return None
    labels = {m.label for m in prediction.members}
    votes = "; ".join(f"network {i}{'' if len(labels) == 1 else f' ({m.label})'}: {m.top.name} "
                      f"({m.top.probability:.0%})" for i, m in enumerate(prediction.members, 1))
    if len(labels) == 1:  # the same architecture three times: say it once
        votes += f" (each a {next(iter(labels))})"
    n = len(prediction.members)
    stats = (card.calibration.get("member_agreement") or {}) if card is not None else {}
    agree_acc, disagree_acc = stats.get("accuracy_when_agree"), stats.get("accuracy_when_disagree")
    measured = ""
    if agree_acc is not None and disagree_acc is not None and stats.get("disagree_rate") is not None:
        measured = (f" On the validation split the networks disagreed on {stats['disagree_rate']:.0%} of "
                    f"photos; the ensemble's top answer was right on {disagree_acc:.0%} of those, against "
                    f"{agree_acc:.0%} when they agreed.")
    if prediction.members_disagree:
        agreeing = sum(m.agrees for m in prediction.members)
        measured = _agreeing_accuracy(agreeing, n, stats.get("by_agreeing")) or measured
        return (f"**The {n} networks of this ensemble disagree on the most likely condition**, one more "
                f"reason for caution: {agreeing} of {n} {'picks' if agreeing == 1 else 'pick'} the ensemble's top "
                f"answer on {'its' if agreeing == 1 else 'their'} own. They "
                f"answer: {votes}.{measured}", True)
    every = "Both" if n == 2 else f"All {n}"
    return f"{every} networks of this ensemble pick the same condition on their own: {votes}.{measured}", False


def other_models_hint(card: ModelCard, cards: Sequence[ModelCard], limit: int = 6) -> str | None:
    """A line pointing to the installed model of the same task that knows the most conditions this one does not.

    Args:
        card: The model chosen on the page.
        cards: Every installed model.
        limit: How many of the extra conditions to name.

    Returns:
        E.g. "This model knows 21 conditions. *Clinical, 38 conditions* also knows psoriasis, fungal skin
        infection, ... and 11 more: choose it in the list above for those.", or None when no installed model
        knows more.
    """
    own = set(card.class_ids)
    best, extra = None, []
    for other in cards:
        if other.id == card.id or other.task != card.task:
            continue
        more = [c for c in other.classes if c.id not in own]
        if len(more) > len(extra):
            best, extra = other, more
    if best is None:
        return None
    # The conditions with the most training photos first: usually the commonest in clinics too.
    counts = (best.training.get("data_summary") or {}).get("class_counts") or {}
    extra.sort(key=lambda c: -int(counts.get(c.id, 0)))
    names = ", ".join(c.name.lower() if c.name[1:].islower() else c.name for c in extra[:limit])
    rest = f" and {len(extra) - limit} more" if len(extra) > limit else ""
    return (f"This model knows {card.num_classes} conditions. *{best.name}* also knows {names}{rest}: choose it in "
            "the list above for those.")
