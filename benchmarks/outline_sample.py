"""A contact sheet of lesion outlines on photos the segmentation model was not trained on, for looking at.

    python benchmarks/outline_sample.py --images ../shared/data/dermoscopy-melanoma/images --n 24 --out sheet.png

Draws a fixed random sample (``--seed``) of the images found under ``--images`` (recursively) with the outline
of the installed segmentation model (or ``--model``), the lesion's area fraction written under each. What the
README says about outlines on the dermoscopy set was read from such a sheet.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from PIL import Image, ImageDraw

from dermlib.images import load_image
from dermlib.segment.model import load_segmenter
from dermlib.segment.overlay import draw_outline


def main(argv: list[str] | None = None) -> int:
    """Write the contact sheet; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--model", help="segmentation model id (default: the installed one)")
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tile", type=int, default=200)
    parser.add_argument("--out", default="outline_sample.png")
    args = parser.parse_args(argv)
    files = sorted(p for p in Path(args.images).rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not files:
        print(f"No images under {args.images}.", file=sys.stderr)
        return 1
    random.Random(args.seed).shuffle(files)
    segmenter = load_segmenter(args.model)
    cols = 6
    rows = (min(args.n, len(files)) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * args.tile, rows * (args.tile + 16)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, path in enumerate(files[: args.n]):
        image = load_image(path)
        mask = segmenter.segment(image)
        tile = draw_outline(image, mask).resize((args.tile, args.tile))
        x, y = (i % cols) * args.tile, (i // cols) * (args.tile + 16)
        sheet.paste(tile, (x, y))
        draw.text((x + 4, y + args.tile + 2), f"{path.parent.name}/{path.stem[:14]} {mask.mean():.0%}", fill="black")
    sheet.save(args.out)
    print(f"wrote {args.out} ({min(args.n, len(files))} images)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
