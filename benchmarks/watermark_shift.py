"""How often does DermNet's logo change a model's top-1 answer on logo-free photos?

Pastes a real DermNet logo (two variants, see :mod:`dermlib.evaluate.watermark`) onto the
Fitzpatrick17k photos of the model's own test split and onto the PAD-UFES-20 smartphone photos, scores
each photo with and without it, and reports the share whose top-1 class changes, with the card's mask
as inference applies it and, for comparison, with the mask switched off. Prints JSON and writes it to
``--output`` (default: ``<model folder>/watermark_shift.json``)::

    .venv/bin/python benchmarks/watermark_shift.py --model clinical-common38 --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from dermlib.evaluate.watermark import logo_crop, logo_from_dermnet, top1_shift
from dermlib.images import load_image
from dermlib.models import get_card, load_model


def fitzpatrick_test_photos(model_folder: Path, data_root: Path) -> list[Path]:
    """The Fitzpatrick17k images of a model's test split (keys relative to a data root or to the set)."""
    splits = pd.read_csv(model_folder / "splits.csv")
    test = splits.loc[splits["split"] == "test", "image"].astype(str)
    fitz = data_root / "fitzpatrick17k"
    out = []
    for key in test:
        for candidate in (data_root / key, fitz / key):
            if candidate.is_file() and "fitzpatrick17k" in candidate.as_posix():
                out.append(candidate)
                break
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model id or folder")
    parser.add_argument("--data-root", default="../shared/data", help="folder holding dermnet/, fitzpatrick17k/, ...")
    parser.add_argument("--output", help="JSON file to write (default: the model folder's watermark_shift.json)")
    parser.add_argument("--no-unmasked", action="store_true", help="skip the comparison with the mask switched off")
    args = parser.parse_args(argv)

    root = Path(args.data_root)
    card = get_card(args.model)
    loaded = load_model(card, device="cpu")
    photo_sets = {
        "fitzpatrick17k-test": fitzpatrick_test_photos(card.path, root),
        "pad-ufes-20": sorted((root / "pad-ufes-20" / "images").glob("*.jpg")),
    }
    logos = {"alpha": logo_from_dermnet(root / "dermnet"), "crop": logo_crop(root / "dermnet")}
    result: dict[str, object] = {"model": card.id, "mask": card.preprocessing.get("mask"), "results": {}}
    for set_name, paths in photo_sets.items():
        if not paths:
            print(f"note: no photos for {set_name}", file=sys.stderr)
            continue
        images = [load_image(p) for p in paths]
        for logo_name, logo in logos.items():
            modes = [True] if args.no_unmasked or loaded.mask is None else [True, False]
            for use_mask in modes:
                key = f"{set_name}/{logo_name}/{'masked' if use_mask and loaded.mask else 'unmasked'}"
                result["results"][key] = top1_shift(loaded, images, logo, use_mask=use_mask)
                print(key, json.dumps(result["results"][key]), file=sys.stderr, flush=True)
    output = Path(args.output) if args.output else card.path / "watermark_shift.json"
    output.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
