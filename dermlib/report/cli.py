"""``python -m dermlib report IMAGE --pdf OUT [--fhir OUT]``: the case report of one photo, as the app makes it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dermlib.errors import DermLensError, ModelError

#: The backends one photo is run with: exporting to ONNX Runtime (1-8 s) costs more than it saves on one image
#: (see ``dermlib.cli._cmd_predict``).


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` command."""
    from dermlib.explain.methods import CAM_METHODS, DEFAULT_CAM_METHOD  # names only: no torch, no grad-cam

    p = sub.add_parser("report", help="write a one- or two-page PDF case report (and FHIR JSON) for one photo",
                       description="Classify one photo and write its case report: the photo, the top-k with "
                                   "calibrated probabilities, risk and urgency, scope and quality warnings, "
                                   "heatmaps, the model's measured limits and the disclaimer. Decision support, "
                                   "not a diagnosis.")
    p.add_argument("image", metavar="IMAGE", help="the photo (jpg, png, webp, heic, ...)")
    p.add_argument("--pdf", required=True, metavar="OUT", help="where to write the PDF report")
    p.add_argument("--fhir", metavar="OUT", help="also write a FHIR R4 DiagnosticReport (JSON, PDF embedded) here")
    p.add_argument("--model", help="model id (default: the default installed model)")
    p.add_argument("--top-k", type=int, default=3, help="how many classes to list (default 3)")
    p.add_argument("--cam", choices=sorted(CAM_METHODS), default=DEFAULT_CAM_METHOD,
                   help=f"heatmap method (default {DEFAULT_CAM_METHOD})")
    p.add_argument("--device", default=None, help="cpu, cuda, mps or auto (default auto)")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from dermlib.images import load_image
    from dermlib.models.registry import default_model_id, get_card

    model_id = args.model or default_model_id()
    if model_id is None:
        raise ModelError("No model is installed. Train one with `python -m dermlib train` (see README).")
    card = get_card(model_id)  # an unknown id fails here, from the card alone, before torch is imported
    if card.is_segmentation:
        raise ModelError(f"Model '{card.id}' outlines lesions; a report needs a classifier (see `dermlib models`).")
    if args.top_k < 1:
        raise DermLensError(f"--top-k must be at least 1, got {args.top_k}.")
    try:
        image = load_image(args.image)  # a file that is not an image is refused before the model loads
    except DermLensError as exc:
        print(f"error: {args.image}: {exc}", file=sys.stderr)
        return 1

    from dermlib.cli import torch_backends
    from dermlib.models import load_model
    from dermlib.report.case import build_case
    from dermlib.report.fhir import fhir_json
    from dermlib.report.pdf import render_pdf

    with torch_backends():
        loaded = load_model(card, device=args.device)
        case = build_case(loaded, image, top_k=args.top_k, cam_method=args.cam)
    if loaded.fallback_notice:
        print(f"note: {loaded.fallback_notice}", file=sys.stderr)
    pdf = render_pdf(case)
    outputs: list[tuple[str, bytes]] = [(args.pdf, pdf)]
    if args.fhir:
        outputs.append((args.fhir, fhir_json(case, pdf).encode("utf-8")))
    for path, data in outputs:
        try:
            Path(path).write_bytes(data)
        except OSError as exc:
            print(f"error: {path}: cannot write the report ({exc.strerror or exc})", file=sys.stderr)
            return 1
        print(f"wrote {path} ({len(data) / 1024:.0f} kB)")
    return 0
