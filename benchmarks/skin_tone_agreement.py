"""Measure the ITA skin-tone estimate against Fitzpatrick17k's annotated types; store it with a model.

Writes ``<model folder>/skin_tone.json`` with

* ``agreement``: the estimate on every Fitzpatrick17k photo with a known type (confusion table of
  groups, Spearman correlation, group accuracy, weighted kappa, and whether it passes the reliability
  rule of :mod:`dermlib.skintone.agreement`);
* ``agreement_phone_photos`` (when ``pad-ufes-20/`` is under the data root): the same measures on the
  PAD-UFES-20 smartphone photos with a type, the photos nearest to what users upload (nearly all types
  I-IV, so it tests the light/intermediate boundary far more than dark skin);
* ``top1_by_estimated_group``: the model's top-1 accuracy on its own test split (every source), grouped
  by the estimated group, which :func:`dermlib.skintone.estimate_group` quotes for a new photo;
* ``top1_by_source_and_estimated_group`` and ``eczema_vs_psoriasis_by_estimated_group``: the same split per
  data source (DermNet NZ has no type labels, so the estimate is its only window onto skin tone) and the
  eczema-versus-psoriasis slice, per estimated group.

Usage::

    .venv/bin/python benchmarks/skin_tone_agreement.py --model clinical-common38 --data-root ../shared/data \\
        --dataset fitz-dermnet
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from dermlib.data import load_index
from dermlib.evaluate.calibration import softmax
from dermlib.models import get_card
from dermlib.skintone.agreement import (
    SKIN_TONE_FILE,
    estimated_groups,
    exclusion_boxes,
    measure_agreement,
    slices_by_estimated_group,
)
from dermlib.train.finalize import model_logits
from dermlib.train.splits import rows_from_splits


def phone_agreement(root: Path, boxes: list[tuple[float, float, float, float]]) -> dict | None:
    """The ITA agreement on PAD-UFES-20's smartphone photos under ``root``, or None when the set is absent.

    Args:
        root: The data root that may hold ``pad-ufes-20/``.
        boxes: The boxes ITA leaves out (:func:`~dermlib.skintone.agreement.exclusion_boxes`).

    Returns:
        :func:`~dermlib.skintone.agreement.measure_agreement`'s dict plus ``data``, naming the photos.
    """
    if not (root / "pad-ufes-20" / "metadata.csv").is_file():
        return None
    pad = load_index("pad-ufes-20", root / "pad-ufes-20")
    pad = pad[pad["image_path"].notna()]
    out = measure_agreement(pad["image_path"].tolist(), pad["fitzpatrick"].tolist(), boxes)
    typed = out["n"] + out["n_no_estimate"]
    out["data"] = f"pad-ufes-20, {len(pad)} smartphone photos with an image ({typed} with a type)"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model id or folder")
    parser.add_argument("--data-root", default="../shared/data", help="folder holding fitzpatrick17k/ (and the "
                        "model's dataset)")
    parser.add_argument("--dataset", help="the model's dataset adapter (default: detected from --model-data)")
    parser.add_argument("--model-data", help="the model's dataset folder (default: --data-root)")
    args = parser.parse_args(argv)

    card = get_card(args.model)
    root = Path(args.data_root)
    boxes = exclusion_boxes(card)
    fitz = load_index("fitzpatrick17k", root / "fitzpatrick17k")
    fitz = fitz[fitz["image_path"].notna()]
    agreement = measure_agreement(fitz["image_path"].tolist(), fitz["fitzpatrick"].tolist(), boxes)
    print("agreement", json.dumps(agreement), flush=True)
    phone = phone_agreement(root, boxes)
    if phone is not None:
        print("agreement_phone_photos", json.dumps(phone), flush=True)

    test = rows_from_splits(card.path, args.model_data or root, args.dataset)
    test = test[(test["split"] == "test") & test["label"].isin(card.class_ids)].reset_index(drop=True)
    logits = model_logits(card.path, test)
    label_of = {c: i for i, c in enumerate(card.class_ids)}
    correct = logits.argmax(1) == test["label"].map(label_of).to_numpy(np.int64)
    groups = estimated_groups(test["image_path"].tolist(), boxes)
    slices = slices_by_estimated_group(groups, correct.tolist(), test["source"].astype(str).tolist(),
                                       softmax(logits), test["label"].tolist(), card.class_ids)
    result = {"model": card.id, "method": "ITA (Chardon et al. 1991) of YCrCb skin pixels outside the centre and "
              "the card's mask boxes; median over pixels", "excluded_boxes": [list(b) for b in boxes],
              "agreement_data": f"fitzpatrick17k, all {len(fitz)} photos with an image (annotated types)",
              "agreement": agreement, "agreement_phone_photos": phone, "top1_by_estimated_group": slices["top1"],
              "top1_data": f"the model's test split ({len(test)} photos, every source)",
              "top1_by_source_and_estimated_group": slices["top1_by_source"],
              "eczema_vs_psoriasis_by_estimated_group": slices["eczema_vs_psoriasis"],
              "caution": "groups are ITA estimates" + ("" if agreement["reliable"] else ", which agree poorly with "
                         "annotated types (see agreement): these slices show how the test photos' colour spreads, not "
                         "accuracy by skin type")}
    (card.path / SKIN_TONE_FILE).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
