"""The ``python -m dermlib`` command line.

Commands are registered by concern: this module owns ``models`` and ``predict``; other concerns
(training, evaluation, datasets) expose ``register(subparsers)`` in their own ``cli`` module and are
added in :data:`_EXTENSIONS`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from dermlib.errors import DermLensError

ONNX_MIN_IMAGES = 50  # `predict` on fewer photos skips the ONNX Runtime export (see _cmd_predict)

# Concerns that add their own sub-commands: module path -> {command: one-line help}. A module is imported
# only when one of its commands runs (training pulls in torch and timm, seconds of start-up that `models`
# or a refused file must not pay); for the others a help-only placeholder keeps `--help` complete. One
# broken optional dependency therefore never takes the whole CLI down either.
_EXTENSIONS: dict[str, dict[str, str]] = {
    "dermlib.train.cli": {
        "train": "fine-tune a timm model on a dataset and write a model folder",
        "calibrate": "refit temperature and abstention thresholds on a model's validation split",
        "ensemble": "combine trained models (same classes and split) into one calibrated model",
        "evaluate": "evaluate an installed model on a dataset",
    },
    "dermlib.data.cli": {"data": "list, index and download dermatology datasets"},
    "dermlib.scope.cli": {"scope": "the out-of-scope check: fit it for a model, or print its measured figures"},
    "dermlib.segment.cli": {"segment": "outline the lesion of dermoscopy images; one JSON object per image"},
    "dermlib.report.cli": {"report": "write a one- or two-page PDF case report (and FHIR JSON) for one photo"},
    "dermlib.runtime.cli": {"cache": "the command line's ONNX graph cache: list, prepare or clear it"},
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser with every registered command.

    Args:
        argv: The arguments about to be parsed. The extension owning their command is imported and
            registered in full; every other extension gets help-only placeholders. None registers all.
    """
    parser = argparse.ArgumentParser(
        prog="python -m dermlib",
        description="DermLens: dermatology decision support (not a diagnosis).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_models = sub.add_parser("models", help="list installed models")
    p_models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p_models.add_argument("--markdown", action="store_true", help="print a Markdown table of test metrics")
    p_models.set_defaults(func=_cmd_models)

    from dermlib.explain.methods import CAM_METHODS  # names only: grad-cam is imported when a map is drawn

    p_pred = sub.add_parser("predict", help="classify images; one JSON object per image")
    p_pred.add_argument("images", nargs="+", metavar="IMAGE", help="image files (jpg, png, webp, heic, ...)")
    p_pred.add_argument("--model", help="model id (default: the default installed model)")
    p_pred.add_argument("--top-k", type=int, default=3, help="how many classes to list (default 3)")
    p_pred.add_argument("--device", default=None, help="cpu, cuda, mps or auto (default auto)")
    p_pred.add_argument("--json", action="store_true", help="print one JSON object per line (for scripts)")
    p_pred.add_argument("--cam", choices=sorted(CAM_METHODS), help="also save a heatmap overlay per top-k class")
    p_pred.add_argument("--cam-dir", default="cams", help="folder for --cam overlays (default ./cams)")
    p_pred.set_defaults(func=_cmd_predict)

    command = _command_of(argv)
    for module_name, commands in _EXTENSIONS.items():
        if argv is None or command in commands:
            importlib.import_module(module_name).register(sub)
        else:
            for name, text in commands.items():
                sub.add_parser(name, help=text, add_help=False)
    return parser


def _command_of(argv: Sequence[str] | None) -> str | None:
    """The sub-command named in ``argv`` (its first non-option word), if any."""
    return next((a for a in (argv or []) if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DermLensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _cmd_models(args: argparse.Namespace) -> int:
    from dermlib.models import scan_models

    cards, broken = scan_models(kind="all")
    if args.markdown:
        cards = [c for c in cards if not c.is_segmentation]
        print(_markdown_table(cards))
        return 0
    if args.json:
        rows = [
            {
                "id": c.id,
                "name": c.name,
                "architecture": c.architecture,
                "members": [m["architecture"] for m in c.members],
                "task": c.task,
                "classes": c.class_ids,
                "default": c.default,
            }
            for c in cards
        ]
        print(json.dumps({"models": rows, "broken": [{"folder": str(b.folder), "problem": b.problem} for b in broken]}))
    else:
        if not cards:
            print("No models installed. Train one with `python -m dermlib train` (see README).")
        for c in cards:
            flag = " (default)" if c.default else ""
            what = "lesion segmentation" if c.is_segmentation else f"{c.num_classes} classes"
            print(f"{c.id}{flag}\t{c.architecture_label}\t{what}\t{c.name}")
        for b in broken:
            print(f"BROKEN {b.folder}: {b.problem}", file=sys.stderr)
    return 0


def _markdown_table(cards) -> str:
    """Test-split headline metrics of each model, as a Markdown table (for the README)."""

    def pct(value) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    rows = [
        "| model | data | test n | top-1 | top-3 | balanced acc. | macro-F1 | weighted F1 | risk-group acc. "
        "| malignant sens. / spec. | ECE | ECE, val + test pooled (n) | top-1 by skin type I-II / III-IV / V-VI (n) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for card in cards:
        m = card.metrics or {}
        mal = (m.get("risk_group") or {}).get("malignant") or {}
        groups = (m.get("by_skin_type") or {}).get("groups") or {}
        skin = " / ".join(f"{pct(g.get('top1_accuracy'))} ({g.get('n', 0)})" for g in groups.values())
        if not any(g.get("n") for g in groups.values()):
            skin = "not recorded"
        check = m.get("calibration_check") or {}
        pooled = "n/a"
        if check.get("ece_cross_fitted") is not None:
            pooled = f"{check['ece_cross_fitted']} ({check.get('n')})"
        rows.append(
            f"| `{card.id}` ({card.architecture_label}) | {card.training.get('dataset', '?')} | {m.get('n', 'n/a')} "
            f"| {pct(m.get('top1_accuracy'))} | {pct(m.get('top3_accuracy'))} | {pct(m.get('balanced_accuracy'))} "
            f"| {pct(m.get('macro_f1'))} | {pct(m.get('weighted_f1'))} | {pct(m.get('risk_group_accuracy'))} "
            f"| {pct(mal.get('sensitivity'))} / {pct(mal.get('specificity'))} "
            f"| {(m.get('calibration') or {}).get('ece', 'n/a')} | {pooled} | {skin} |"
        )
    return "\n".join(rows)


def _cmd_predict(args: argparse.Namespace) -> int:

    from dermlib.errors import ModelError
    from dermlib.models.registry import default_model_id, get_card

    model_id = args.model or default_model_id()
    if model_id is None:
        raise ModelError("No model is installed. Train one with `python -m dermlib train` (see README).")
    get_card(model_id)  # an unknown id fails here, from the card alone
    # Read here, where DERMLENS_PREDICT_BACKEND still holds what the user set (torch_backends() changes it).
    args.cached_graph = fast_path_allowed(args)
    return _predict_images(args, model_id)


def fast_path_allowed(args: argparse.Namespace) -> bool:
    """Whether ``predict`` may answer from the cached ONNX graph (:mod:`dermlib.runtime`), without torch.

    Not for heatmaps (``--cam``: they need torch's gradients), not on a GPU (``--device cuda|mps``, or an
    NVIDIA GPU present with no device chosen, where torch would pick it), and not when
    ``DERMLENS_PREDICT_BACKEND=torch`` asks for torch.
    """
    if args.cam or (args.device or "cpu").lower() not in ("cpu", "auto"):
        return False
    if (os.environ.get("DERMLENS_PREDICT_BACKEND") or "").strip().lower() == "torch":
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return args.device == "cpu" or not (gpus.is_dir() and any(gpus.iterdir()))


def _open_model(args: argparse.Namespace, model_id: str) -> tuple[Any, Callable[[Any], Any]]:
    """The model and a function from an image to its :class:`~dermlib.inference.Prediction`: the cached
    ONNX graph when allowed and available, else torch (a cache that cannot be written, or preprocessing the
    torch-free path does not reproduce, only costs speed)."""
    if getattr(args, "cached_graph", False):
        from dermlib.models.registry import get_card
        from dermlib.runtime.geometry import UnsupportedStep
        from dermlib.runtime.model import open_model, predict_images

        try:
            model = open_model(get_card(model_id))
            return model, lambda image: predict_images(model, [image], top_k=args.top_k)[0]
        except (OSError, ImportError, UnsupportedStep) as exc:
            print(f"note: the fast CPU path is unavailable ({exc}); using torch.", file=sys.stderr)
    from dermlib.inference import predict
    from dermlib.models import load_model

    def backends() -> contextlib.AbstractContextManager:
        # Exporting in memory takes 1-8 s, more than it saves on a few photos: torch answers them.
        return contextlib.nullcontext() if len(args.images) >= ONNX_MIN_IMAGES else torch_backends()

    def predict_one(image: Any) -> Any:
        with backends():
            return predict(loaded, image, top_k=args.top_k)

    with backends():
        loaded = load_model(model_id, device=args.device)
    return loaded, predict_one


@contextlib.contextmanager
def torch_backends() -> Iterator[None]:
    """Answer in torch (no ONNX Runtime export) inside the block, unless the caller chose a backend; the
    variables are restored afterwards, so a caller of :func:`main` in the same process keeps its own."""
    saved = {name: os.environ.get(name) for name in ("DERMLENS_PREDICT_BACKEND", "DERMLENS_SCOPE_BACKEND")}
    for name, value in saved.items():
        os.environ[name] = value or "torch"
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class ImageFiles:
    """The readable images among command-line paths: iterate for ``(path, image)``; an unreadable file
    prints ``error: PATH: reason`` on stderr and is counted in :attr:`failures` (the command exits 1)."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)
        self.failures = 0

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        from dermlib.images import load_image

        for path in self.paths:
            try:
                image = load_image(path)
            except DermLensError as exc:
                self.failures += 1
                print(f"error: {path}: {exc}", file=sys.stderr)
                continue
            yield path, image


def _predict_images(args: argparse.Namespace, model_id: str) -> int:
    # The model is opened on the first image that decodes: a file that is not an image is refused at once,
    # and a run of only bad files never loads it.
    loaded = None
    notice_shown = None
    files = ImageFiles(args.images)
    for path, image in files:
        if loaded is None:
            loaded, predict_one = _open_model(args, model_id)
        if loaded.fallback_notice and loaded.fallback_notice != notice_shown:
            notice_shown = loaded.fallback_notice
            print(f"note: {notice_shown}", file=sys.stderr)
        pred = predict_one(image)
        record = {"image": path, **pred.to_dict()}
        if line := _track_record(pred, loaded.card):
            record["track_record"] = line
        if args.cam:
            record["cams"] = _save_cams(loaded, image, pred, args.cam, Path(args.cam_dir), Path(path).stem)
        print(json.dumps(record) if args.json else _human(record))
    if loaded is not None and loaded.fallback_notice and loaded.fallback_notice != notice_shown:
        print(f"note: {loaded.fallback_notice}", file=sys.stderr)  # the accelerator failed during the last image
    return 1 if files.failures else 0


def _track_record(pred, card) -> str | None:
    """The first answer's record on the test split in plain text, as the Diagnose page words it (torch-free)."""
    from dermlib.report.text import plain
    from dermlib.ui.model_summary import track_record

    line = track_record(pred, card)
    return plain(line) if line else None


def _human(record: dict) -> str:
    lines = [f"{record['image']}  (model {record['model']})"]
    scope = record["scope"]
    if not record["in_scope"]:
        lines.append(f"  OUT OF SCOPE: {scope['message']} The model's output below means nothing for this image.")
    for warning in scope["quality"]:
        lines.append(f"  photo quality: {warning['message']} {warning['advice']}")
    for item in record["top_k"]:
        lines.append(f"  {item['probability']:6.1%}  {item['name']} [{item['label']}]")
    risk = ", ".join(f"{k} {v:.0%}" for k, v in record["risk"].items())
    lines.append(f"  risk groups: {risk}")
    if record["uncertain"]:
        lines.append("  UNCERTAIN: " + "; ".join(record["uncertain_reasons"]) + ". Do not rely on this result.")
    if record.get("track_record"):
        lines.append(f"  {record['track_record']}")
    for path in record.get("cams", []):
        lines.append(f"  heatmap: {path}")
    return "\n".join(lines)


def _save_cams(loaded, image, pred, method: str, folder, stem: str) -> list[str]:
    from dermlib.explain import explain, overlay_heatmap

    indices = [loaded.card.class_ids.index(s.label) for s in pred.top_k]
    maps = explain(loaded, image, indices, method)
    folder.mkdir(parents=True, exist_ok=True)
    view = loaded.model_view(image)
    paths = []
    for score, cam in zip(pred.top_k, maps, strict=True):
        out = folder / f"{stem}_{method}_{score.label}.png"
        overlay_heatmap(view, cam).save(out)
        paths.append(str(out))
    return paths
