"""``python -m dermlib data ...``: list, index and download datasets."""

from __future__ import annotations

import argparse
from pathlib import Path

from dermlib.data.download import DOWNLOADERS, MANUAL_DOWNLOAD, download
from dermlib.data.registry import DATASETS, load_index
from dermlib.data.schema import summarize_index

AUTO = "auto"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``data`` command (``list``, ``index``, ``download``) to the dermlib CLI.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers()``.
    """
    data = subparsers.add_parser("data", help="list, index and download dermatology datasets")
    commands = data.add_subparsers(dest="data_command", required=True)

    listing = commands.add_parser("list", help="show the registered dataset adapters")
    listing.set_defaults(func=cmd_list)

    index = commands.add_parser("index", help="index a dataset folder and print a summary")
    index.add_argument("name", choices=[AUTO, *DATASETS], help="adapter name, or 'auto' to detect")
    index.add_argument("--root", required=True, type=Path, help="the dataset folder")
    index.add_argument("--csv", type=Path, help="also write the index table to this csv file")
    index.add_argument("--verify", action="store_true", help="open every image header and fail on bad files")
    index.set_defaults(func=cmd_index)

    fetch = commands.add_parser("download", help="download a dataset (needs internet)")
    fetch.add_argument("name", choices=list(DOWNLOADERS))
    fetch.add_argument("--to", required=True, type=Path, dest="dest", help="destination dataset folder")
    fetch.add_argument(
        "--base-url", help="mirror: csv URL (fitzpatrick17k), Dataverse server, or archive URL"
    )
    fetch.add_argument("--workers", type=int, default=8, help="parallel image downloads (fitzpatrick17k)")
    fetch.add_argument("--limit", type=int, help="only the first N images (fitzpatrick17k, for a trial)")
    fetch.add_argument("--label", action="append", dest="labels", help="only this label (fitzpatrick17k)")
    fetch.add_argument(
        "--no-verify", action="store_true", help="skip the md5 check of images (fitzpatrick17k)"
    )
    fetch.add_argument("--quiet", action="store_true", help="no progress bars")
    fetch.set_defaults(func=cmd_download)


def cmd_list(args: argparse.Namespace) -> int:
    """Print each registered adapter with its layout and how to get the data."""
    for name, adapter in DATASETS.items():
        how = "python -m dermlib data download" if name in DOWNLOADERS else MANUAL_DOWNLOAD.get(name, "")
        print(f"{name:15s} {adapter.title} ({adapter.modality})")
        print(f"{'':15s} layout: {adapter.layout}")
        if adapter.licence:
            print(f"{'':15s} licence: {adapter.licence}")
        print(f"{'':15s} get it: {how}")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    """Index a dataset folder, print its summary and optionally write the table."""
    # A DatasetError reaches dermlib.cli.main, which prints it and exits with 2 like every other command.
    index = load_index(None if args.name == AUTO else args.name, args.root, verify=args.verify)
    summary = summarize_index(index)
    source = index["source"].iloc[0]
    print(f"{source}: {summary['n_records']} records, {summary['n_images']} with an image on disk")
    for key in ("class_counts", "risk_group_counts", "fitzpatrick_counts", "split_counts"):
        counts = summary[key]
        shown = ", ".join(f"{k}: {v}" for k, v in counts.items())  # type: ignore[union-attr]
        print(f"  {key.replace('_counts', '').replace('_', ' ')}: {shown}")
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        index.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    """Download a dataset; print the report, listing failures; exit 1 when any file failed, 2 on a bad request."""
    options: dict[str, object] = {"progress": not args.quiet}
    if args.base_url:
        options["base_url"] = args.base_url
    if args.name == "fitzpatrick17k":
        options.update(workers=args.workers, limit=args.limit, labels=args.labels, verify=not args.no_verify)
    report = download(args.name, args.dest, **options)  # a DatasetError exits with 2 through dermlib.cli.main
    print(report.summary())
    return 0 if report.ok else 1
