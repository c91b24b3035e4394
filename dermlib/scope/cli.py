"""``python -m dermlib scope fit`` (fit and store a model's scope check) and ``scope report`` (print it)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``scope`` command and its ``fit`` and ``report`` sub-commands."""
    from dermlib.data import DATASETS
    from dermlib.scope.names import DEFAULT_EXTRACTOR_SIZE, SHIPPABLE

    p = sub.add_parser("scope", help="the out-of-scope check: fit it for a model, or print its measured figures")
    actions = p.add_subparsers(dest="scope_command", required=True, metavar="ACTION")
    f = actions.add_parser("fit", help="fit, compare and store a model's scope check (writes scope.safetensors)",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    f.add_argument("--model", required=True, help="model folder (with splits.csv)")
    f.add_argument("--data", required=True, help="the dataset folder the model was trained on")
    f.add_argument("--dataset", choices=sorted(DATASETS), help="dataset adapter (default: detected)")
    f.add_argument("--data-root", required=True,
                   help="folder holding natural-photos/ and the other datasets (e.g. ../shared/data)")
    f.add_argument("--size", type=int, default=DEFAULT_EXTRACTOR_SIZE, help="extractor input side in pixels")
    f.add_argument("--score", choices=SHIPPABLE, help="ship this score (default: the best on calibration data)")
    f.add_argument("--no-model-features", dest="compare_model_features", action="store_false",
                   help="skip the comparison on the model's own features (slow for ensembles); "
                   "an earlier fit's rows are kept")
    f.add_argument("--cache-dir", default="runs/scope-cache", help="extractor feature cache")
    f.set_defaults(func=_cmd_fit)
    r = actions.add_parser("report", help="print a model's stored scope figures")
    r.add_argument("--model", help="model id (default: the default model)")
    r.add_argument("--json", action="store_true", help="print the card's whole scope section")
    r.add_argument("--markdown", action="store_true",
                   help="print Markdown tables of every installed model's check and of the scores compared")
    r.set_defaults(func=_cmd_report)


def _cmd_fit(args: argparse.Namespace) -> int:
    from dermlib.scope.fit import fit_scope

    section = fit_scope(args.model, args.data, args.data_root, dataset=args.dataset, extractor_size=args.size,
                        compare_model_features=args.compare_model_features, cache_dir=args.cache_dir,
                        score=args.score)
    print(format_report(section))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from dermlib.errors import ModelError
    from dermlib.models import default_model_id, get_card

    if args.markdown:
        from dermlib.models import list_models
        from dermlib.scope.report import comparison_table, markdown_table

        cards = list_models()
        print(markdown_table(cards) + "\n\n" + comparison_table(cards))
        return 0
    model_id = args.model or default_model_id()
    if model_id is None:
        raise ModelError("No model is installed.")
    section = get_card(model_id).raw.get("scope")
    if not section:
        raise ModelError(f"Model '{model_id}' has no scope check; fit one with `python -m dermlib scope fit`.")
    print(json.dumps(section, indent=1) if args.json else format_report(section))
    return 0


def format_report(section: dict) -> str:
    """The comparison and the shipped check's figures as plain text."""
    from dermlib.scope.report import comparison_rows, headline_rows

    lines = ["score                        AUROC cal  AUROC nat  AUROC wrong-mod  kept   "
             "natural refused  wrong-mod refused"]
    for row in comparison_rows(section):
        lines.append(f"{row['score']:28s} {row['calibration_auroc']:>9s}  {row['auroc_natural']:>9s}  "
                     f"{row['auroc_wrong_modality']:>15s}  {row['test_kept']:>5s}  {row['natural_refused']:>15s}  "
                     f"{row['wrong_modality_refused']:>17s}")
    lines.append("")
    lines.append(f"shipped: {section['score']} on {section['extractor']['architecture']} ImageNet features at "
                 f"{section['extractor']['size']} px, threshold {section['threshold']}")
    for label, value in headline_rows(section):
        lines.append(f"  {label:52s} {value}")
    return "\n".join(lines)
