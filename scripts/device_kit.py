"""Get a common-conditions training run onto the lent GPU machine and its models back (issue 18).

The ``device`` tool sends the working tree and at most 64 MiB in all; ``weights/`` alone is 173 MB and the
data root does not travel. This script makes the smallest kit that trains ``clinical-common38``'s recipe
there, and brings the results back. The whole round trip (docs/COMMON_CONDITIONS.md, "Getting such a run
onto the lent GPU machine")::

    .venv/bin/python scripts/device_kit.py pack --data-root ../shared/data   # .devkit/ (git-ignored)
    .venv/bin/python scripts/device_kit.py slim       # weights/, docs/screenshots/ leave git's index
    # device run: command "bash scripts/device_train.sh", carry [".devkit"], timeout_s 420
    .venv/bin/python scripts/device_kit.py unslim     # at once, whatever the run did
    .venv/bin/python scripts/device_kit.py unpack <files_at> --into runs/gpu --data-root ../shared/data

``pack`` writes only the training and validation photos of ``clinical-common38``'s split (the test photos
stay here, where every model is scored on the original files), re-encoded at the shorter side training
decodes them to (256 px for 224-px training) as JPEG, the metadata tables cut to those photos, both fixed
splits, and ``clinical-fitz21-lite0`` in int8 as the initial backbone (the machine has no offline ImageNet
package and no internet; the shipped model's lineage starts from that backbone too). ``unpack`` puts each
returned model next to the full split and recalibrates it on the original photos, which also scores its
test split.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: What the device tool sends at most, and what the kit may take of it (the rest is the slim tree).
SEND_LIMIT = 64 * 2**20
KIT_BUDGET = 60 * 2**20
#: The split every run reuses and the model whose backbone starts each run.
SPLIT_MODEL = "clinical-common38"
FITZ_SPLIT_MODEL = "clinical-fitz21"
INIT_MODEL = "clinical-fitz21-lite0"
#: Tracked folders that stay behind during a device call (173 MB of weights, 3.5 MB of screenshots).
SLIM_PATHS = ("weights", "docs/screenshots")
#: Files of a returned model folder that travel back (the rest is recomputed here).
RETURNED = ("model.safetensors", "card.json", "args.json", "metrics.csv")


def reencode(src: Path, dst: Path, short_side: int, quality: int) -> int:
    """Write ``src`` as a JPEG whose shorter side is at most ``short_side``; return its size in bytes."""
    with Image.open(src) as img:
        img = img.convert("RGB")
        w, h = img.size
        scale = short_side / min(w, h)
        if scale < 1:  # never enlarged
            img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality, optimize=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(buf.getvalue())
    return len(buf.getvalue())


def kit_photos(splits: pd.DataFrame, keep: Iterable[str] = ("train", "val")) -> list[str]:
    """Keys (paths under the data root) of the photos a kit carries: those of the splits in ``keep``."""
    return sorted(splits.loc[splits["split"].isin(tuple(keep)), "image"].astype(str))


def slim_tree_bytes(repo: Path = REPO) -> int:
    """Bytes of the tracked files outside :data:`SLIM_PATHS`: what travels beside the kit once slimmed."""
    out = subprocess.run(["git", "ls-files", "-z", "--", ".", *(f":!{p}" for p in SLIM_PATHS)], cwd=repo,
                         check=True, capture_output=True).stdout
    return sum((repo / name).stat().st_size for name in out.decode().split("\0") if name and (repo / name).is_file())


def pack(data_root: Path, weights: Path, out: Path, short_side: int = 256, quality: int = 70) -> dict[str, int]:
    """Build the kit in ``out`` (replacing it). Returns bytes per part and in total.

    Raises:
        FileNotFoundError: A photo of the split, a metadata table or a model folder is missing.
    """
    from dermlib.models.card import load_card, save_card
    from dermlib.runtime.cache import folder_bytes
    from dermlib.train.finalize import store_weights

    if out.exists():
        shutil.rmtree(out)
    splits = pd.read_csv(weights / SPLIT_MODEL / "splits.csv")
    keys = kit_photos(splits)
    photo_bytes = sum(reencode(data_root / key, out / "data" / key, short_side, quality) for key in keys)
    carried = {Path(k).stem for k in keys}

    # Metadata cut to the carried photos (Fitzpatrick17k's table is 4 MB for 2,860 photos).
    dermnet, fitz = out / "data" / "dermnet", out / "data" / "fitzpatrick17k"
    meta = pd.read_csv(data_root / "dermnet" / "metadata.csv")
    meta[meta["md5"].astype(str).isin(carried)].to_csv(dermnet / "metadata.csv", index=False)
    shutil.copy2(data_root / "dermnet" / "copies_in_other_sets.csv", dermnet / "copies_in_other_sets.csv")
    table = pd.read_csv(data_root / "fitzpatrick17k" / "fitzpatrick17k.csv")
    table[table["md5hash"].astype(str).isin(carried)].to_csv(fitz / "fitzpatrick17k.csv", index=False)

    # Both fixed splits, cut to the carried rows: the combined dataset reads clinical-fitz21's for its
    # Fitzpatrick17k part, and every run reuses clinical-common38's with --splits.
    kit_weights = out / "weights"
    for model, prefix in ((SPLIT_MODEL, ""), (FITZ_SPLIT_MODEL, "fitzpatrick17k/")):
        table = pd.read_csv(weights / model / "splits.csv")
        table = table[(prefix + table["image"].astype(str)).isin(set(keys))]
        (kit_weights / model).mkdir(parents=True, exist_ok=True)
        table.to_csv(kit_weights / model / "splits.csv", index=False)

    # The initial backbone in int8: its precision only sets where training starts. Its scope sidecar stays.
    init = kit_weights / INIT_MODEL
    init.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "card.json"):
        shutil.copy2(weights / INIT_MODEL / name, init / name)
    raw = dict(load_card(init).raw)
    raw.pop("scope", None)
    save_card(raw, init)
    store_weights(init, "int8")
    sizes = {"photos": photo_bytes, "n_photos": len(keys), "kit": folder_bytes(out)}
    sizes["metadata_and_weights"] = sizes["kit"] - photo_bytes
    return sizes


def _ignore_lines() -> list[str]:
    return [f"/{p}/" for p in SLIM_PATHS]


def slim(repo: Path = REPO) -> None:
    """Take :data:`SLIM_PATHS` out of git's index and ignore them locally, so the device tool does not send them.

    The files stay on disk; :func:`unslim` puts them back in the index. Committing in between would delete
    the shipped models from the repository, hence the loud reminder.
    """
    exclude = repo / ".git" / "info" / "exclude"
    lines = exclude.read_text().splitlines() if exclude.is_file() else []
    exclude.write_text("\n".join([*lines, *(x for x in _ignore_lines() if x not in lines)]) + "\n")
    subprocess.run(["git", "rm", "-r", "-q", "--cached", "--", *SLIM_PATHS], cwd=repo, check=True)
    print(f"{', '.join(SLIM_PATHS)} are out of git's index: run `scripts/device_kit.py unslim` right after the "
          "device call, and commit nothing before.")


def unslim(repo: Path = REPO) -> None:
    """Undo :func:`slim`: :data:`SLIM_PATHS` back in the index, the local ignore lines gone. Safe to repeat."""
    exclude = repo / ".git" / "info" / "exclude"
    if exclude.is_file():
        kept = [line for line in exclude.read_text().splitlines() if line not in _ignore_lines()]
        exclude.write_text("\n".join(kept) + ("\n" if kept else ""))
    subprocess.run(["git", "reset", "-q", "--", *SLIM_PATHS], cwd=repo, check=True)
    left = subprocess.run(["git", "status", "--porcelain", "--", *SLIM_PATHS], cwd=repo, check=True,
                          capture_output=True, text=True).stdout
    print("Back in git's index." + (f" Changes there:\n{left}" if left else ""))


def unpack(files: Path, into: Path, weights: Path = REPO / "weights") -> list[Path]:
    """Unpack every ``<name>.tar`` the device run returned into ``into/<name>`` with the full split.

    The run carried no test photos, so each folder's ``splits.csv`` is replaced by ``clinical-common38``'s,
    which lists the same training and validation photos and the test photos too.

    Returns:
        The model folders, ready for ``dermlib calibrate``.
    """
    folders = []
    for tar in sorted(files.glob("*.tar")):
        folder = into / tar.stem
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tar) as archive:
            for member in archive.getmembers():
                if member.isfile() and Path(member.name).name in RETURNED:  # nothing else, no paths
                    (folder / Path(member.name).name).write_bytes(archive.extractfile(member).read())
        shutil.copy2(weights / SPLIT_MODEL / "splits.csv", folder / "splits.csv")
        folders.append(folder)
    return folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="build .devkit/ from the data root")
    p.add_argument("--data-root", default="../shared/data")
    p.add_argument("--out", default=str(REPO / ".devkit"))
    p.add_argument("--short-side", type=int, default=256, help="shorter side of the carried photos (default 256)")
    p.add_argument("--quality", type=int, default=70, help="JPEG quality (default 70)")
    sub.add_parser("slim", help="take weights/ out of git's index before a device call")
    sub.add_parser("unslim", help="put weights/ back after it")
    u = sub.add_parser("unpack", help="unpack the returned models and recalibrate them on the original photos")
    u.add_argument("files", help="the folder the device call's files landed in (its files_at)")
    u.add_argument("--into", default=str(REPO / "runs" / "gpu"))
    u.add_argument("--data-root", default="../shared/data")
    u.add_argument("--no-calibrate", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "pack":
        sizes = pack(Path(args.data_root), REPO / "weights", Path(args.out), args.short_side, args.quality)
        tree = slim_tree_bytes()
        total = sizes["kit"] + tree
        print(json.dumps({**sizes, "slim_tree": tree, "would_send": total, "limit": SEND_LIMIT}))
        if sizes["kit"] > KIT_BUDGET or total > SEND_LIMIT:
            print(f"Too large to send ({total / 2**20:.1f} MiB with the slim tree): lower --quality or "
                  "--short-side.", file=sys.stderr)
            return 1
    elif args.command == "slim":
        slim()
    elif args.command == "unslim":
        unslim()
    else:
        folders = unpack(Path(args.files), Path(args.into))
        if not folders:
            print(f"No <name>.tar in {args.files}.", file=sys.stderr)
            return 1
        from dermlib.train.finalize import recalibrate

        for folder in folders:
            print(folder)
            if not args.no_calibrate:
                print(json.dumps(recalibrate(folder, args.data_root, "fitz-dermnet", store_dtype="float16"), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
