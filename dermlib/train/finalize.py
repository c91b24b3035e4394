"""After training: a model's logits over index rows, calibration, abstention, the test report, storage.

:func:`finalize_model` is the last step of every run (``train``, ``ensemble``) and of ``calibrate``
(:func:`recalibrate`): it fits the temperature and abstention thresholds on the validation split and writes
the test split's report into the card, so the card's figures are always those of the stored weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from safetensors.torch import save_file
from tqdm.auto import tqdm

from dermlib.errors import ModelError
from dermlib.evaluate import (
    choose_uncertain_thresholds,
    evaluation_report,
    fit_temperature,
    held_out_calibration_check,
    softmax,
)
from dermlib.evaluate.metrics import round_floats
from dermlib.evaluate.slices import slice_summary
from dermlib.knowledge.urgency import fit_malignant_alert, score_malignant_alert
from dermlib.models.card import WEIGHTS_FILE, save_card
from dermlib.models.loading import file_sha256, load_model, load_state_dict
from dermlib.models.quantize import stored_state_dict
from dermlib.train.splits import rows_from_splits


def model_logits(folder: Path, rows: pd.DataFrame, batch_size: int = 32, progress: bool = True,
                 crop_lesion: str | None = None) -> np.ndarray:
    """Logits of an installed model over index rows, through the app's own preprocessing path.

    ``crop_lesion`` names a segmentation model that crops each photo to its lesion first
    (:func:`dermlib.segment.crop.crop_to_lesion`)."""
    return model_logits_and_members(folder, rows, batch_size, progress, crop_lesion)[0]


def model_logits_and_members(folder: Path, rows: pd.DataFrame, batch_size: int = 32,
                             progress: bool = True, crop_lesion: str | None = None
                             ) -> tuple[np.ndarray, np.ndarray | None]:
    """As :func:`model_logits`, plus each ensemble member's logits (N, M, C); None for a single network."""
    from dermlib.images import load_image

    if crop_lesion:
        from dermlib.segment.crop import lesion_cropper

        crop = lesion_cropper(crop_lesion)
        load_image = lambda path, _load=load_image: crop(_load(path))  # noqa: E731
    loaded = load_model(folder)
    outs, member_outs = [], []
    paths = rows["image_path"].tolist()
    bar = tqdm(range(0, len(paths), batch_size), desc="scoring", leave=False, disable=not progress)
    for start in bar:
        images = [load_image(p) for p in paths[start : start + batch_size]]
        logits, members = loaded.logits_and_members(loaded.preprocess(images))
        outs.append(logits.cpu().numpy())
        if members is not None:
            member_outs.append(members.cpu().numpy())
    if not outs:
        return np.zeros((0, loaded.card.num_classes)), None
    return np.concatenate(outs), (np.concatenate(member_outs) if member_outs else None)


def member_agreement_stats(logits: np.ndarray, member_logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """How often an ensemble's members disagree on the top class, and how accurate the ensemble is then.

    Args:
        logits: Ensemble logits (N, C).
        member_logits: Members' logits (N, M, C).
        labels: True classes (N,).

    Returns:
        ``disagree_rate``, ``accuracy_when_agree`` and ``accuracy_when_disagree`` (None for an empty group),
        ``n``, and ``by_agreeing``: for each k from 0 to M, how many photos had exactly k members picking
        the ensemble's own top class, and the ensemble's accuracy on them. With many members "they
        disagree" is common and says little; how many agree says more.
    """
    tops = member_logits.argmax(axis=2)
    agree = (tops == tops[:, :1]).all(axis=1)
    ensemble_top = logits.argmax(axis=1)
    correct = ensemble_top == labels
    agreeing = (tops == ensemble_top[:, None]).sum(axis=1)

    def rate(mask: np.ndarray) -> float | None:
        return round(float(correct[mask].mean()), 4) if mask.any() else None

    by_agreeing = [{"agreeing": k, "n": int((agreeing == k).sum()), "accuracy": rate(agreeing == k)}
                   for k in range(member_logits.shape[1] + 1)]
    return {"n": len(labels), "disagree_rate": round(float((~agree).mean()), 4) if len(labels) else None,
            "accuracy_when_agree": rate(agree), "accuracy_when_disagree": rate(~agree), "by_agreeing": by_agreeing}


def add_alert_by_source(metrics: dict[str, Any], probs: np.ndarray, labels: np.ndarray, sources: list[str],
                        malignant: np.ndarray, threshold: float) -> None:
    """Score the malignant alert on each source's test photos, into ``metrics["by_source"][source]``.

    A multi-source model is compared with a single-source one on that source's photos alone (the 21-condition
    model on Fitzpatrick17k's), so the urgency line's sensitivity and specificity are needed per source too.
    Sources without a malignant test photo get none.

    Args:
        metrics: The test report, with ``by_source`` from :func:`dermlib.evaluate.slices.slice_summary`.
        probs: Calibrated test probabilities, one row per photo.
        labels: Class indices of the test photos.
        sources: The source of each test photo.
        malignant: Per class, whether it is in the malignant risk group.
        threshold: The card's fitted alert threshold.
    """
    truth = malignant[np.asarray(labels, dtype=np.int64)]
    sources_arr = np.asarray(sources, dtype=object)
    for source, report in (metrics.get("by_source") or {}).items():
        rows = sources_arr == source
        if rows.any() and truth[rows].any():
            report["malignant_alert"] = score_malignant_alert(probs[rows], truth[rows], malignant, threshold)


def recalibrate(folder: str | Path, data_root: str | Path, dataset: str | None = None,
                target_accuracy: float = 0.8, store_dtype: str | None = None) -> dict[str, Any]:
    """Refit temperature and abstention thresholds on the model's own validation split; re-evaluate test.

    Args:
        folder: The model folder.
        data_root: The dataset folder it was trained on.
        dataset: Adapter name (default: detected).
        target_accuracy: Accuracy the answers it does not abstain on must reach on validation.
        store_dtype: Rewrite the weights file in this precision first (:func:`store_weights`).

    Returns:
        The card's new ``calibration`` section.
    """
    from dermlib.models.card import load_card

    folder = Path(folder)
    if store_dtype:
        store_weights(folder, store_dtype)
    index = rows_from_splits(folder, data_root, dataset)
    val_rows = index[index["split"] == "val"].reset_index(drop=True)
    test_rows = index[index["split"] == "test"].reset_index(drop=True)
    finalize_model(folder, val_rows, test_rows, target_accuracy=target_accuracy)
    return load_card(folder).calibration


def store_weights(folder: str | Path, dtype: str) -> int:
    """Rewrite a single model's weights file in another precision and update the card's ``weights`` section.

    The network still computes in float32 (the weights are expanded on loading), so only the file shrinks;
    recalibrate afterwards so the card's figures are those of the stored weights.

    Returns:
        The new file size in bytes.

    Raises:
        ModelError: The folder holds an ensemble or its weights do not verify.
        ValueError: Unknown dtype.
    """
    from dermlib.models.card import load_card

    card = load_card(Path(folder))
    if card.is_ensemble:
        raise ModelError(f"{card.id} is an ensemble: `dermlib ensemble --dtype` sets its stored precision.")
    state = stored_state_dict(load_state_dict(card), dtype)
    file = Path(folder) / WEIGHTS_FILE
    save_file(state, str(file))
    raw = dict(card.raw)
    raw["weights"] = {**dict(raw.get("weights") or {}), "file": WEIGHTS_FILE, "sha256": file_sha256(file),
                      "bytes": file.stat().st_size, "dtype": dtype}
    save_card(raw, Path(folder))
    return int(raw["weights"]["bytes"])


def finalize_model(out: Path, val_rows: pd.DataFrame, test_rows: pd.DataFrame, target_accuracy: float = 0.8) -> None:
    """Calibrate on validation, choose abstention thresholds, evaluate the test split, update the card."""
    from dermlib.models.card import load_card

    card = load_card(out)
    class_ids = card.class_ids
    risk = [c.risk_group for c in card.classes]
    label_of = {c: i for i, c in enumerate(class_ids)}
    val_logits, val_members = model_logits_and_members(out, val_rows)
    val_y = val_rows["label"].map(label_of).to_numpy(np.int64)
    temperature = float(fit_temperature(val_logits, val_y))
    val_probs = softmax(val_logits, temperature)
    thresholds = choose_uncertain_thresholds(val_probs, val_y, target_accuracy=target_accuracy)
    calibration = {
        "temperature": round(temperature, 4),
        "min_top1_probability": round(float(thresholds["min_top1_probability"]), 4),
        "max_normalized_entropy": round(float(thresholds["max_normalized_entropy"]), 4),
        "target_accuracy": target_accuracy,
        "val_coverage": thresholds.get("coverage"),
        "fitted_on": f"validation split ({len(val_rows)} images)",
    }
    if val_members is not None:
        # Shown beside an ensemble's answer: how much its members' disagreement says, measured on validation.
        calibration["member_agreement"] = member_agreement_stats(val_logits, val_members, val_y)
    malignant = np.array([group == "malignant" for group in risk], dtype=bool)
    alert = fit_malignant_alert(val_probs, malignant[val_y], malignant)
    if alert is not None:
        calibration["malignant_alert"] = alert
    reports: dict[str, Any] = {
        "val": evaluation_report(val_probs, val_y, class_ids, risk, val_rows["fitzpatrick"].to_numpy(),
                                 uncertain_thresholds=calibration),
        "val_uncalibrated_ece": evaluation_report(softmax(val_logits, 1.0), val_y, class_ids,
                                                  risk)["calibration"]["ece"],
    }
    metrics: dict[str, Any] = {}
    if not test_rows.empty:
        test_logits = model_logits(out, test_rows)
        test_y = test_rows["label"].map(label_of).to_numpy(np.int64)
        test_probs = softmax(test_logits, temperature)
        metrics = evaluation_report(test_probs, test_y, class_ids, risk, test_rows["fitzpatrick"].to_numpy(),
                                    uncertain_thresholds=calibration)
        metrics["split"] = "test"
        if alert is not None:
            metrics["malignant_alert"] = score_malignant_alert(test_probs, malignant[test_y], malignant,
                                                               alert["threshold"])
        if "source" in test_rows and test_rows["source"].nunique() > 1:
            # A combined dataset: each source scored alone (skin types exist only in some), plus the
            # eczema-versus-psoriasis slice.
            sources = test_rows["source"].astype(str).tolist()
            metrics.update(round_floats(slice_summary(test_probs, test_y, sources, class_ids, risk,
                                                      test_rows["fitzpatrick"].to_numpy(),
                                                      uncertain_thresholds=calibration)))
            if alert is not None:
                add_alert_by_source(metrics, test_probs, test_y, sources, malignant, alert["threshold"])
        if not val_rows.empty:
            # A test split of a few hundred images cannot tell an ECE of 0.04 from 0.06 (sampling noise);
            # pooling both held-out splits, each scaled by the other's temperature, halves that noise.
            metrics["calibration_check"] = round_floats(
                held_out_calibration_check(val_logits, val_y, test_logits, test_y, temperature))
        reports["test"] = metrics
    raw = dict(card.raw)
    raw["calibration"] = calibration
    raw["metrics"] = metrics
    save_card(raw, out)
    # Other steps add their own sections to this file (``scope fit`` its report): recalibrating keeps them.
    file = out / "evaluation.json"
    try:
        previous = json.loads(file.read_text()) if file.is_file() else {}
    except ValueError:
        previous = {}
    kept = {k: v for k, v in previous.items() if k not in reports} if isinstance(previous, dict) else {}
    file.write_text(json.dumps({**reports, **kept}, indent=1) + "\n")
