"""Downloading datasets for users with internet access.

* Fitzpatrick17k: the csv from the dataset's GitHub repository, then every image from the csv's ``url``
  column in parallel, each verified against its ``md5hash`` and stored as
  ``images/<label-slug>/<md5hash>.jpg``. Resumable: files already present and verified are skipped.
  Failures (dead links, wrong checksums) are collected and listed at the end rather than stopping the run.
* HAM10000: the image archives and metadata from Harvard Dataverse (doi:10.7910/DVN/DBW86T), whose file
  listing gives each file's md5; archives are extracted in place.
* PAD-UFES-20: the Mendeley Data archive (zr7vgbcyr2, version 1), extracted with its nested image zips.

Every base URL can be overridden (arguments, CLI ``--base-url``, or environment variables) so that tests
serve files from a local HTTP server and mirrors can be used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from dermlib.data.labels import slugify
from dermlib.errors import DatasetError

USER_AGENT = "DermLens/0.1 (+https://github.com/; dataset downloader)"
TIMEOUT_S = 60
_CHUNK = 1 << 16

FITZPATRICK17K_CSV_URL = "https://raw.githubusercontent.com/mattgroh/fitzpatrick17k/main/fitzpatrick17k.csv"
DATAVERSE_URL = "https://dataverse.harvard.edu"
HAM10000_DOI = "doi:10.7910/DVN/DBW86T"
HAM10000_FILES = ("HAM10000_images_part_1.zip", "HAM10000_images_part_2.zip", "HAM10000_metadata.tab")
PAD_UFES_20_URL = "https://prod-dcd-datasets-cache-zipfiles.s3.eu-west-1.amazonaws.com/zr7vgbcyr2-1.zip"

# Environment overrides (e.g. a mirror); explicit arguments win over these, these over the defaults.
ENV_URLS = {
    "fitzpatrick17k": "DERMLENS_FITZPATRICK17K_CSV_URL",
    "ham10000": "DERMLENS_DATAVERSE_URL",
    "pad-ufes-20": "DERMLENS_PAD_UFES_20_URL",
}


class DownloadError(DatasetError):
    """A file could not be downloaded; ``reason`` is the short cause (``HTTP 404``, ``checksum mismatch``)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"Download of {url} failed: {reason}")
        self.url = url
        self.reason = reason


@dataclass
class Failure:
    """One file that could not be fetched."""

    name: str
    url: str
    reason: str


@dataclass
class DownloadReport:
    """What a download run did."""

    dataset: str
    dest: Path
    downloaded: int = 0
    skipped: int = 0
    failed: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every file is now present (and verified where a checksum is known)."""
        return not self.failed

    def summary(self) -> str:
        """Return a short text for a person: counts, then each failure."""
        lines = [
            f"{self.dataset}: {self.downloaded} downloaded, {self.skipped} already present, "
            f"{len(self.failed)} failed -> {self.dest}"
        ]
        lines += [f"  FAILED {f.name}: {f.reason} ({f.url})" for f in self.failed]
        return "\n".join(lines)


def _hash_file(path: Path, algorithm: str = "md5") -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _open(url: str) -> urllib.request.Request:
    return urllib.request.Request(url, headers={"User-Agent": USER_AGENT})


def fetch(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> bool:
    """Download ``url`` to ``dest`` (via a ``.part`` file), verifying ``md5`` when given.

    Args:
        url: Where to read.
        dest: File to write.
        md5: Expected hex digest; a mismatch deletes the download and raises.
        progress: Show a byte progress bar.
        desc: Progress bar label (default: the file name).

    Returns:
        ``False`` when ``dest`` already existed and matched ``md5`` (or no checksum was given), ``True`` when
        it was downloaded.

    Raises:
        DatasetError: On HTTP or network errors and checksum mismatches, naming the URL.
    """
    if dest.is_file() and (md5 is None or _hash_file(dest) == md5.lower()):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(_open(url), timeout=TIMEOUT_S) as response, part.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=desc or dest.name,
                disable=not progress,
                leave=False,
            ) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as error:
        part.unlink(missing_ok=True)
        reason = f"HTTP {error.code}" if isinstance(error, urllib.error.HTTPError) else str(error)
        raise DownloadError(url, reason) from error
    if md5 is not None and digest.hexdigest() != md5.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(url, f"checksum mismatch (md5 {digest.hexdigest()}, expected {md5.lower()})")
    part.replace(dest)
    return True


def extract(archive: Path, dest: Path, *, remove: bool = False) -> list[Path]:
    """Extract a zip archive into ``dest``, refusing members that would escape it.

    Returns:
        The paths extracted.

    Raises:
        DatasetError: When the archive is corrupt or holds unsafe paths.
    """
    root = dest.resolve()
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            for member in members:
                target = (root / member.filename).resolve()
                if not target.is_relative_to(root):
                    raise DatasetError(f"{archive.name} holds an unsafe path {member.filename!r}.")
            zipped.extractall(root)
    except zipfile.BadZipFile as error:
        raise DatasetError(f"{archive} is not a valid zip archive: {error}") from error
    if remove:
        archive.unlink()
    return [root / m.filename for m in members if not m.is_dir()]


# --- Fitzpatrick17k ------------------------------------------------------------------------------


def download_fitzpatrick17k(
    dest: str | os.PathLike[str],
    *,
    base_url: str | None = None,
    workers: int = 8,
    limit: int | None = None,
    labels: list[str] | None = None,
    verify: bool = True,
    progress: bool = True,
) -> DownloadReport:
    """Download Fitzpatrick17k images listed in its csv.

    Args:
        dest: Dataset folder; gets ``fitzpatrick17k.csv`` and ``images/<label-slug>/<md5hash>.jpg``.
        base_url: URL of the csv, used when ``dest`` has none (default: the dataset's GitHub repository,
            or ``$DERMLENS_FITZPATRICK17K_CSV_URL``).
        workers: Parallel downloads.
        limit: Only the first ``limit`` rows (after ``labels`` filtering), for a quick trial.
        labels: Only these labels (csv text or slug).
        verify: Check each image's md5 against ``md5hash`` (turn off only if a mirror re-encoded images).
        progress: Show progress bars.

    Returns:
        A :class:`DownloadReport`; failures are listed, not raised.

    Raises:
        DatasetError: When the csv itself cannot be fetched or lacks ``md5hash``/``label``/``url``.
    """
    root = Path(dest)
    csv_path = root / "fitzpatrick17k.csv"
    report = DownloadReport("fitzpatrick17k", root)
    url = base_url or os.environ.get(ENV_URLS["fitzpatrick17k"]) or FITZPATRICK17K_CSV_URL
    if fetch(url, csv_path, progress=progress, desc="fitzpatrick17k.csv"):
        report.downloaded += 1
    else:
        report.skipped += 1
    meta = pd.read_csv(csv_path, dtype=str)
    missing = {"md5hash", "label", "url"} - set(meta.columns)
    if missing:
        raise DatasetError(f"{csv_path.name} lacks the column(s) {', '.join(sorted(missing))}.")
    meta["slug"] = meta["label"].str.strip().map(slugify, na_action="ignore")
    if labels:
        wanted = {slugify(label) for label in labels}
        meta = meta[meta["slug"].isin(wanted)]
    if limit is not None:
        meta = meta.head(limit)

    def one(row: pd.Series) -> tuple[str, Failure | None]:
        name = f"{row['md5hash']}.jpg"
        if not isinstance(row["slug"], str):
            return "failed", Failure(name, str(row["url"]), "no label in the csv")
        if not isinstance(row["url"], str) or not row["url"].startswith(("http://", "https://")):
            return "failed", Failure(name, str(row["url"]), "no download url in the csv")
        try:
            target = root / "images" / row["slug"] / name
            fresh = fetch(row["url"], target, md5=row["md5hash"] if verify else None, progress=False)
            return ("downloaded" if fresh else "skipped"), None
        except DownloadError as error:
            return "failed", Failure(name, row["url"], error.reason)

    rows = [row for _, row in meta.iterrows()]
    with (
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
        tqdm(total=len(rows), unit="img", desc="Fitzpatrick17k images", disable=not progress) as bar,
    ):
        futures = [pool.submit(one, row) for row in rows]
        for future in as_completed(futures):
            outcome, failure = future.result()
            if failure is not None:
                report.failed.append(failure)
            elif outcome == "downloaded":
                report.downloaded += 1
            else:
                report.skipped += 1
            bar.update(1)
    report.failed.sort(key=lambda f: f.name)
    return report


# --- HAM10000 (Harvard Dataverse) ---------------------------------------------------------------


def dataverse_files(base_url: str, doi: str) -> dict[str, dict[str, object]]:
    """List a Dataverse dataset's files: ``{filename: {"id", "md5", "tabular"}}``.

    Raises:
        DatasetError: When the listing cannot be fetched or parsed.
    """
    query = urllib.parse.urlencode({"persistentId": doi})
    url = f"{base_url.rstrip('/')}/api/datasets/:persistentId/?{query}"
    try:
        with urllib.request.urlopen(_open(url), timeout=TIMEOUT_S) as response:
            payload = json.load(response)
        files = payload["data"]["latestVersion"]["files"]
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as error:
        raise DatasetError(f"Cannot list the files of {doi} at {url}: {error}") from error
    out: dict[str, dict[str, object]] = {}
    for entry in files:
        data = entry.get("dataFile", {})
        checksum = data.get("checksum") or {}
        md5 = data.get("md5") or (
            checksum.get("value") if checksum.get("type", "").upper() == "MD5" else None
        )
        out[data.get("filename", "")] = {
            "id": data.get("id"),
            "md5": md5,
            "tabular": bool(data.get("originalFileFormat")),
        }
    return out


def download_ham10000(
    dest: str | os.PathLike[str],
    *,
    base_url: str | None = None,
    progress: bool = True,
    keep_archives: bool = False,
) -> DownloadReport:
    """Download and extract HAM10000 from Harvard Dataverse.

    Args:
        dest: Dataset folder; gets ``HAM10000_metadata.csv`` and ``HAM10000_images_part_{1,2}/``.
        base_url: Dataverse server (default ``https://dataverse.harvard.edu`` or ``$DERMLENS_DATAVERSE_URL``).
        progress: Show progress bars.
        keep_archives: Keep the zip files after extraction.

    Returns:
        A :class:`DownloadReport` (failures listed).

    Raises:
        DatasetError: When the file listing cannot be read.
    """
    root = Path(dest)
    base = (base_url or os.environ.get(ENV_URLS["ham10000"]) or DATAVERSE_URL).rstrip("/")
    listing = dataverse_files(base, HAM10000_DOI)
    report = DownloadReport("ham10000", root)
    for filename in HAM10000_FILES:
        info = listing.get(filename)
        if info is None:
            report.failed.append(Failure(filename, base, "not in the Dataverse file listing"))
            continue
        url = f"{base}/api/access/datafile/{info['id']}"
        target = root / filename
        if info["tabular"]:
            # Dataverse converts uploaded csv files to .tab; ask for the original csv.
            url += "?format=original"
            target = root / (Path(filename).stem + ".csv")
        extracted_marker = root / (Path(filename).stem + ".extracted")
        if extracted_marker.exists():
            report.skipped += 1
            continue
        try:
            fresh = fetch(url, target, md5=info["md5"], progress=progress, desc=filename)  # type: ignore[arg-type]
        except DownloadError as error:
            report.failed.append(Failure(filename, url, error.reason))
            continue
        report.downloaded += int(fresh)
        report.skipped += int(not fresh)
        if target.suffix == ".zip":
            try:
                extract(target, root / target.stem, remove=not keep_archives)
                extracted_marker.touch()
            except DatasetError as error:
                report.failed.append(Failure(filename, url, str(error)))
    return report


# --- PAD-UFES-20 (Mendeley Data) ----------------------------------------------------------------


def download_pad_ufes_20(
    dest: str | os.PathLike[str],
    *,
    base_url: str | None = None,
    md5: str | None = None,
    progress: bool = True,
    keep_archives: bool = False,
) -> DownloadReport:
    """Download and extract PAD-UFES-20 (``metadata.csv`` + ``images/`` from its nested zips).

    Args:
        dest: Dataset folder.
        base_url: URL of the dataset's zip archive (default: Mendeley Data's archive of version 1, or
            ``$DERMLENS_PAD_UFES_20_URL``).
        md5: Expected md5 of the archive when known (Mendeley publishes none for the whole archive).
        progress: Show progress bars.
        keep_archives: Keep the zip files after extraction.

    Returns:
        A :class:`DownloadReport` (failures listed).
    """
    root = Path(dest)
    url = base_url or os.environ.get(ENV_URLS["pad-ufes-20"]) or PAD_UFES_20_URL
    report = DownloadReport("pad-ufes-20", root)
    if (root / "metadata.csv").is_file() and (root / "images").is_dir():
        report.skipped += 1
        return report
    archive = root / "pad-ufes-20.zip"
    try:
        report.downloaded += int(fetch(url, archive, md5=md5, progress=progress, desc="PAD-UFES-20"))
        staging = root / "_extract"
        extract(archive, staging, remove=not keep_archives)
        _arrange_pad_ufes_20(staging, root)
        shutil.rmtree(staging, ignore_errors=True)
    except DownloadError as error:
        report.failed.append(Failure(archive.name, url, error.reason))
    except DatasetError as error:
        report.failed.append(Failure(archive.name, url, str(error)))
    return report


def _arrange_pad_ufes_20(staging: Path, root: Path) -> None:
    """Move ``metadata.csv`` to ``root`` and every image (from nested zips too) into ``root/images``."""
    csvs = sorted(staging.rglob("metadata.csv"))
    if not csvs:
        raise DatasetError("The PAD-UFES-20 archive holds no metadata.csv.")
    shutil.move(str(csvs[0]), root / "metadata.csv")
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    for nested in sorted(staging.rglob("*.zip")):
        extract(nested, nested.parent / (nested.stem + "_x"), remove=True)
    from dermlib.data.files import is_image_name

    for path in staging.rglob("*"):
        if path.is_file() and is_image_name(path.name):
            shutil.move(str(path), images / path.name)


# One entry per dataset that can be fetched automatically (a subset of dermlib.data.DATASETS).
DOWNLOADERS: dict[str, Callable[..., DownloadReport]] = {
    "fitzpatrick17k": download_fitzpatrick17k,
    "ham10000": download_ham10000,
    "pad-ufes-20": download_pad_ufes_20,
}

MANUAL_DOWNLOAD: dict[str, str] = {
    "isic2019": (
        "Download ISIC_2019_Training_Input.zip, ISIC_2019_Training_GroundTruth.csv and "
        "ISIC_2019_Training_Metadata.csv from https://challenge.isic-archive.com/data/#2019 "
        "and unzip them into one folder."
    ),
    "dermnet": (
        "Download the DermNet archive from https://www.kaggle.com/datasets/shubhamgoel27/dermnet "
        "(a Kaggle account is needed) and unzip it so the folder holds train/ and test/."
    ),
    "imagefolder": "Put one sub-folder of images per class in a folder (optionally under train/val/test).",
}


def download(name: str, dest: str | os.PathLike[str], **options: object) -> DownloadReport:
    """Download the dataset registered as ``name`` into ``dest``.

    Raises:
        DatasetError: When the dataset cannot be downloaded automatically (the message says how to get it).
    """
    if name not in DOWNLOADERS:
        how = MANUAL_DOWNLOAD.get(name, "")
        raise DatasetError(
            f"{name} cannot be downloaded automatically (automatic: {', '.join(DOWNLOADERS)}). {how}".strip()
        )
    return DOWNLOADERS[name](dest, **options)
