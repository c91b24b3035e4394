"""``python -m dermlib segment``: outline the lesion of dermoscopy images, measure it, write the masks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dermlib.errors import DermLensError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``segment`` command."""
    p = sub.add_parser("segment", help="outline the lesion of dermoscopy images; one JSON object per image")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (jpg, png, webp, heic, ...)")
    p.add_argument("--model", help="segmentation model id (default: the installed segmentation model)")
    p.add_argument("--masks-to", metavar="DIR",
                   help="write one binary PNG mask per image here (DIR/<image stem>.png, 0/255, the image's size)")
    p.add_argument("--json", action="store_true", help="print one JSON object per line (for scripts)")
    p.set_defaults(func=_cmd_segment)


def segment_record(segmenter: Any, image: Any, path: str) -> tuple[dict[str, Any], Any]:
    """The JSON record of one image and its mask (bool array)."""
    from dermlib.segment.measure import measure_lesion

    mask = segmenter.segment(image)
    record: dict[str, Any] = {"image": path, "model": segmenter.card.id}
    if not mask.any():
        record.update(area_fraction=0.0, bbox=None, asymmetry=None, border_irregularity=None, colours=[],
                      note="no lesion was outlined")
        return record, mask
    record.update(measure_lesion(mask, image).to_dict())
    return record, mask


def _cmd_segment(args: argparse.Namespace) -> int:
    from dermlib.cli import ImageFiles
    from dermlib.models.registry import default_model_id, get_card

    model_id = args.model or default_model_id(kind="segmentation")
    if model_id is None:
        raise DermLensError("No lesion segmentation model is installed (see README, `train --task segmentation`).")
    card = get_card(model_id)  # an unknown id or a classifier fails here, before torch is imported
    if not card.is_segmentation:
        raise DermLensError(f"Model '{card.id}' is a classifier; `segment` needs a lesion segmentation model.")
    folder = Path(args.masks_to) if args.masks_to else None
    segmenter = None
    files = ImageFiles(args.images)
    for path, image in files:
        if segmenter is None:
            from dermlib.segment.model import load_segmenter

            segmenter = load_segmenter(card)
        record, mask = segment_record(segmenter, image, path)
        if folder is not None:
            from PIL import Image

            folder.mkdir(parents=True, exist_ok=True)
            out = folder / f"{Path(path).stem}.png"
            Image.fromarray(mask.astype("uint8") * 255).save(out)
            record["mask"] = str(out)
        print(json.dumps(record) if args.json else _human(record))
    return 1 if files.failures else 0


def _human(record: dict[str, Any]) -> str:
    lines = [f"{record['image']}  (model {record['model']})"]
    if record.get("note"):
        lines.append(f"  {record['note']}")
        return "\n".join(lines)
    lines.append(f"  lesion area      {record['area_fraction']:.1%} of the image, box {record['bbox']}")
    lines.append(f"  asymmetry        {record['asymmetry'][0]:.2f} / {record['asymmetry'][1]:.2f} "
                 f"(the two principal axes; 0 = mirror-symmetric)")
    lines.append(f"  border           {record['border_irregularity']:.2f} (1.0 = a circle; higher = more irregular)")
    lines.append(f"  colours          {', '.join(record['colours']) or 'none of the six'}")
    if record.get("diameter_pixels") is not None:
        lines.append(f"  longest extent   {record['diameter_pixels']:.0f} pixels (no known scale, so not in mm)")
    if record.get("mask"):
        lines.append(f"  mask             {record['mask']}")
    return "\n".join(lines)
