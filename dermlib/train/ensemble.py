"""``python -m dermlib ensemble``: combine trained models into one ensemble model folder.

The members must come from the same training CLI on the same dataset split (identical ``splits.csv``),
otherwise one member's training images could sit in the ensemble's test split. The ensemble gets its own
calibration (temperature and abstention thresholds fitted on the shared validation split) and its own
test evaluation, exactly like a trained model (:func:`dermlib.train.finalize.finalize_model`).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from safetensors.torch import save_file

from dermlib.errors import ModelError
from dermlib.models.card import ENSEMBLE_ARCHITECTURE, WEIGHTS_FILE, ModelCard, save_card
from dermlib.models.loading import build_model, file_sha256, load_state_dict
from dermlib.models.quantize import STORAGE_DTYPES, stored_state_dict
from dermlib.models.registry import get_card


def _split_map(card: ModelCard) -> dict[str, str]:
    file = card.path / "splits.csv" if card.path else None
    if file is None or not file.is_file():
        raise ModelError(f"Model '{card.id}' has no splits.csv, so its test split cannot be checked.")
    table = pd.read_csv(file)
    # Older runs stored bare file names, newer ones paths under the data root: compare by file name.
    return {Path(str(k)).name: str(v) for k, v in zip(table["image"], table["split"], strict=True)}


def check_members(cards: Sequence[ModelCard]) -> None:
    """Refuse members that cannot be averaged or whose splits differ.

    Members may differ in architecture, input size and normalisation (the ensemble adapts the input).

    Raises:
        ModelError: Fewer than two members, an ensemble among them, different classes or CAM reshape,
            or different dataset splits.
    """
    if len(cards) < 2:
        raise ModelError("An ensemble needs at least two member models.")
    first = cards[0]
    for card in cards:
        if card.is_ensemble:
            raise ModelError(f"'{card.id}' is already an ensemble; list its members instead.")
        if card.class_ids != first.class_ids:
            raise ModelError(f"'{card.id}' and '{first.id}' do not have the same classes in the same order.")
        if card.cam.get("reshape") != first.cam.get("reshape"):
            raise ModelError(f"'{card.id}' and '{first.id}' need different CAM reshapes.")
    reference = _split_map(first)
    for card in cards[1:]:
        if _split_map(card) != reference:
            raise ModelError(f"'{card.id}' was trained on a different split from '{first.id}'; an ensemble of "
                             "them would have seen some of its own test images.")


def _member_summary(card: ModelCard) -> str:
    t = card.training
    bits = [card.architecture, f"{card.preprocessing['input_size'][1]} px"]
    if t.get("epochs_run"):
        bits.append(f"{t['epochs_run']} epochs")
    if t.get("best_val_macro_f1") is not None:
        bits.append(f"best val macro-F1 {float(t['best_val_macro_f1']):.3f}")
    return f"{card.id} ({', '.join(bits)})"


def build_ensemble(
    members: Sequence[str | Path],
    out: str | Path,
    data_root: str | Path,
    dataset: str | None = None,
    model_id: str | None = None,
    name: str | None = None,
    member_weights: Sequence[float] | None = None,
    dtype: str = "float16",
    target_accuracy: float = 0.8,
    default: bool = False,
    limitations: Sequence[str] = (),
    native_sizes: bool = True,
    hflip_tta: bool | None = None,
) -> Path:
    """Write an ensemble model folder (card, weights, splits) and calibrate and evaluate it.

    The input size and preprocessing are the first member's; members trained at another size or with
    another normalisation get the input resized and re-normalised inside the network.

    Args:
        members: Model ids or folders, at least two, trained on the same split; the first leads.
        out: Folder to write (created; an existing card there is replaced).
        data_root: The dataset folder the members were trained on (for calibration and the test split).
        dataset: Dataset adapter (default: detected).
        model_id: Card id (default: the folder name).
        name: Display name (default: derived from the members).
        member_weights: Each member's weight in the logit average (default: equal).
        dtype: Stored weight precision: ``float16`` (half the size of ``float32``), ``int8`` (about a
            quarter; weights are expanded to float32 on loading) or ``float32``.
        target_accuracy: Accuracy the kept predictions must reach on validation (abstention thresholds).
        default: Mark the ensemble as the app's default model.
        limitations: Known limits for the card; default: the first member's.
        native_sizes: Resize the input to each member's own training size (False: every member sees the
            first member's size).
        hflip_tta: Average each photo with its mirror image at inference (default: as the first member).
            Switching it off halves the passes, so two members without it cost about what one member with
            it costs.

    Returns:
        The model folder.

    Raises:
        ModelError: The members cannot be combined (see :func:`check_members`), ``out`` is a member's
            folder, or a weights file is bad.
        ValueError: Unknown dtype, or a weight per member is not given.
    """
    from dermlib.train.finalize import finalize_model
    from dermlib.train.splits import rows_from_splits

    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(STORAGE_DTYPES)}, not '{dtype}'.")
    cards = [get_card(str(m)) for m in members]
    check_members(cards)
    weights = [1.0] * len(cards) if member_weights is None else [float(w) for w in member_weights]
    if len(weights) != len(cards):
        raise ValueError("Give one weight per member.")
    out = Path(out)
    if any(c.path is not None and c.path.resolve() == out.resolve() for c in cards):
        raise ModelError(f"--out {out} is one of the members' own folders; write the ensemble elsewhere.")
    lead = cards[0]
    model_id = model_id or out.name
    raw: dict[str, Any] = {
        "schema_version": lead.raw.get("schema_version", 1),
        "id": model_id,
        "name": name or f"{lead.name.split(' (')[0]} (ensemble of {len(cards)})",
        "description": (f"The mean of the logits of {len(cards)} networks fine-tuned on "
                        f"{lead.training.get('dataset_name', lead.training.get('dataset', 'the same data'))} by the "
                        "DermLens training CLI, calibrated as one model."),
        "default": bool(default),
        "task": lead.task,
        "architecture": ENSEMBLE_ARCHITECTURE,
        "model_kwargs": {},
        "members": [
            {"architecture": c.architecture, "model_kwargs": c.model_kwargs,
             "input_size": list(c.preprocessing["input_size"] if native_sizes else lead.preprocessing["input_size"]),
             "weight": w, "mean": list(c.preprocessing["mean"]), "std": list(c.preprocessing["std"]),
             "source": {"id": c.id, "sha256": c.weights.get("sha256")}}
            for c, w in zip(cards, weights, strict=True)
        ],
        "classes": [{"id": c.id, "name": c.name, "risk_group": c.risk_group,
                     **({"risk_label": c.risk_label, "risk_note": c.risk_note} if c.risk_label else {})}
                    for c in lead.classes],
        "preprocessing": dict(lead.preprocessing),
        "cam": {"target_layer": [f"members.{i}.{c.cam_layers[0]}" for i, c in enumerate(cards)],
                "reshape": lead.cam.get("reshape")},
        "calibration": {},
        "inference": {**lead.inference, **({} if hflip_tta is None else {"hflip_tta": bool(hflip_tta)})},
        "training": {
            **{k: lead.training[k] for k in ("dataset", "dataset_name", "licence", "citation") if k in lead.training},
            "ensemble_of": [_member_summary(c) for c in cards],
            "combination": (f"weighted mean of logits (weights {', '.join(f'{w:g}' for w in weights)}), "
                            f"stored as {dtype}, one temperature fitted on validation"),
            "date": dt.date.today().isoformat(),
            "data_summary": lead.training.get("data_summary", {}),
        },
        "metrics": {},
        "limitations": list(limitations) or list(lead.limitations),
        "weights": {"file": WEIGHTS_FILE},
    }

    # Assemble the state dict by loading each verified member file into the ensemble network.
    scratch = ModelCard.from_dict(raw)
    network = build_model(scratch)
    for member, card in zip(network.members, cards, strict=True):
        member.load_state_dict(load_state_dict(card), strict=True)
    state = stored_state_dict(network.state_dict(), dtype)
    out.mkdir(parents=True, exist_ok=True)
    weights_file = out / WEIGHTS_FILE
    save_file(state, str(weights_file))
    raw["weights"] = {"file": WEIGHTS_FILE, "sha256": file_sha256(weights_file),
                      "bytes": weights_file.stat().st_size, "dtype": dtype}
    shutil.copyfile(lead.path / "splits.csv", out / "splits.csv")
    (out / "args.json").write_text(json.dumps({
        "command": "ensemble", "members": [str(m) for m in members], "member_weights": weights, "dtype": dtype,
        "data_root": str(data_root), "dataset": dataset, "target_accuracy": target_accuracy,
        "hflip_tta": raw["inference"].get("hflip_tta"),
    }, indent=2) + "\n")
    save_card(raw, out)

    index = rows_from_splits(out, data_root, dataset)
    finalize_model(out, index[index["split"] == "val"].reset_index(drop=True),
                   index[index["split"] == "test"].reset_index(drop=True), target_accuracy=target_accuracy)
    return out
