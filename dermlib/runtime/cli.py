"""``python -m dermlib cache``: list, prepare or clear the command line's ONNX graph cache."""

from __future__ import annotations

import argparse
import shutil


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``cache`` command and its ``list``, ``prepare`` and ``clear`` sub-commands."""
    p = sub.add_parser("cache", help="the command line's ONNX graph cache: list, prepare or clear it")
    actions = p.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    actions.add_parser("list", help="print each cached graph, its size and whether it is usable").set_defaults(
        func=_cmd_list)
    prep = actions.add_parser("prepare", help="export graphs now, so that the first `predict` is fast "
                                              "(e.g. in an image build step)")
    prep.add_argument("--model", action="append", help="model id (repeatable; default: every installed classifier)")
    prep.set_defaults(func=_cmd_prepare)
    actions.add_parser("clear", help="delete the cache folder").set_defaults(func=_cmd_clear)


def _cmd_list(args: argparse.Namespace) -> int:
    from dermlib.runtime.cache import cache_dir, entries, folder_bytes

    rows = entries()
    print(f"cache: {cache_dir()}")
    if not rows:
        print("(empty)")
    for entry, manifest in rows:
        state = "ok" if manifest else "unusable (incomplete, stale or damaged: exported again when needed)"
        what = (manifest or {}).get("model") or (manifest or {}).get("architecture") or entry.folder.name
        print(f"{entry.folder.parent.name}/{entry.folder.name}\t{folder_bytes(entry.folder) / 2**20:.1f} MiB\t"
              f"{what}\t{state}")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    import time

    from dermlib.models.registry import get_card, list_models
    from dermlib.runtime.model import open_extractor, open_model
    from dermlib.scope.checker import get_checker

    cards = [get_card(m) for m in args.model] if args.model else list_models()
    extractors = set()
    for card in cards:
        started = time.perf_counter()
        open_model(card)
        checker = get_checker(card)
        if checker is not None and checker.extractor_name not in extractors:
            extractors.add(checker.extractor_name)
            open_extractor(*checker.extractor_name)
        print(f"{card.id}: ready ({time.perf_counter() - started:.1f} s)")
    return 0


def _cmd_clear(args: argparse.Namespace) -> int:
    from dermlib.runtime.cache import cache_dir

    root = cache_dir()
    if root.is_dir():
        shutil.rmtree(root)
        print(f"removed {root}")
    else:
        print(f"nothing to remove: {root} does not exist")
    return 0
