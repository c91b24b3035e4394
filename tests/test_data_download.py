"""Downloads and the ``data`` CLI against a loopback HTTP server (no other network)."""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from dermlib.cli import main
from dermlib.data import load_index
from dermlib.data import synthetic as syn
from dermlib.data.cli import register
from dermlib.data.download import (
    HAM10000_DOI,
    download,
    download_fitzpatrick17k,
    download_ham10000,
    download_pad_ufes_20,
    fetch,
)
from dermlib.errors import DatasetError


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Serve ``tmp_path/www`` on 127.0.0.1 from a thread; yields (base url, folder)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(QuietHandler, directory=str(www))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    finally:
        httpd.shutdown()
        httpd.server_close()


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _serve_fitzpatrick(tmp_path: Path, base: str, www: Path) -> tuple[str, int]:
    """Publish a synthetic Fitzpatrick17k: 4 good images, one with a wrong checksum, one 404."""
    src = syn.make_fitzpatrick17k(tmp_path / "src", n_images=6, n_metadata_only=0, flat=True)
    csv = pd.read_csv(src / "fitzpatrick17k.csv")
    (www / "img").mkdir()
    urls = []
    for k, md5 in enumerate(csv["md5hash"]):
        name = f"photo{k}.jpg"
        if k == 4:  # served, but not the file the csv's md5 describes
            syn.make_image(www / "img" / name, 999)
        elif k != 5:  # k == 5 is never published -> 404
            (src / "images" / f"{md5}.jpg").replace(www / "img" / name)
        urls.append(f"{base}/img/{name}")
    csv["url"] = urls
    csv.to_csv(www / "fitzpatrick17k.csv", index=False)
    return f"{base}/fitzpatrick17k.csv", 4


def test_fetch_verifies_and_reports(server: tuple[str, Path], tmp_path: Path) -> None:
    base, www = server
    (www / "f.bin").write_bytes(b"hello")
    good = hashlib.md5(b"hello").hexdigest()
    assert fetch(f"{base}/f.bin", tmp_path / "out" / "f.bin", md5=good, progress=False) is True
    assert fetch(f"{base}/f.bin", tmp_path / "out" / "f.bin", md5=good, progress=False) is False  # resumed
    with pytest.raises(DatasetError, match="checksum mismatch"):
        fetch(f"{base}/f.bin", tmp_path / "bad.bin", md5="0" * 32, progress=False)
    assert not (tmp_path / "bad.bin").exists() and not (tmp_path / "bad.bin.part").exists()
    with pytest.raises(DatasetError, match="HTTP 404"):
        fetch(f"{base}/missing.bin", tmp_path / "missing.bin", progress=False)


def test_fitzpatrick17k_download_resumes_and_lists_failures(server: tuple[str, Path], tmp_path: Path) -> None:
    base, www = server
    csv_url, n_good = _serve_fitzpatrick(tmp_path, base, www)
    dest = tmp_path / "fitz"
    report = download_fitzpatrick17k(dest, base_url=csv_url, workers=3, progress=False)
    assert report.downloaded == 1 + n_good  # the csv and the good images
    assert sorted(f.reason.split(" ")[0] for f in report.failed) == ["HTTP", "checksum"]
    assert not report.ok and "FAILED" in report.summary()
    index = load_index("fitzpatrick17k", dest)
    with_image = index.dropna(subset=["image_path"])
    assert len(index) == 6 and len(with_image) == n_good
    assert all(
        _md5(Path(p)) == g for p, g in zip(with_image["image_path"], with_image["group_id"], strict=True)
    )
    assert all(
        Path(p).parent.name == lab
        for p, lab in zip(with_image["image_path"], with_image["label"], strict=True)
    )

    again = download_fitzpatrick17k(dest, base_url=csv_url, workers=3, progress=False)
    assert (again.downloaded, again.skipped, len(again.failed)) == (0, 1 + n_good, 2)

    # A corrupted local copy is noticed (md5) and fetched again.
    victim = Path(with_image["image_path"].iloc[0])
    victim.write_bytes(b"truncated")
    third = download_fitzpatrick17k(dest, base_url=csv_url, workers=3, progress=False)
    assert third.downloaded == 1 and _md5(victim) == with_image["group_id"].iloc[0]


def test_ham10000_from_dataverse(server: tuple[str, Path], tmp_path: Path) -> None:
    base, www = server
    src = syn.make_ham10000(tmp_path / "src", n_images=4, n_metadata_only=1)
    files = www / "api" / "access" / "datafile"
    files.mkdir(parents=True)
    images = sorted((src / "HAM10000_images_part_1").iterdir())
    for number, chunk in ((1, images[:3]), (2, images[3:])):
        with zipfile.ZipFile(files / str(number), "w") as zipped:
            for path in chunk:
                zipped.write(path, f"{path.name}")
    (src / "HAM10000_metadata.csv").replace(files / "3")
    listing = {
        "data": {
            "latestVersion": {
                "files": [
                    {
                        "dataFile": {
                            "id": 1,
                            "filename": "HAM10000_images_part_1.zip",
                            "md5": _md5(files / "1"),
                        }
                    },
                    {
                        "dataFile": {
                            "id": 2,
                            "filename": "HAM10000_images_part_2.zip",
                            "checksum": {"type": "MD5", "value": _md5(files / "2")},
                        }
                    },
                    {
                        "dataFile": {
                            "id": 3,
                            "filename": "HAM10000_metadata.tab",
                            "md5": _md5(files / "3"),
                            "originalFileFormat": "text/csv",
                        }
                    },
                ]
            }
        }
    }
    api = www / "api" / "datasets" / ":persistentId"
    api.mkdir(parents=True)
    (api / "index.html").write_text(json.dumps(listing))
    dest = tmp_path / "ham"
    report = download_ham10000(dest, base_url=base, progress=False)
    assert report.ok, report.summary()
    assert report.downloaded == 3
    index = load_index(None, dest)
    assert index["source"].iloc[0] == "ham10000"
    assert len(index) == 5 and index["image_path"].notna().sum() == 4
    assert not list(dest.glob("*.zip"))  # archives removed after extraction
    assert download_ham10000(dest, base_url=base, progress=False).skipped == 3

    # A listing whose checksum does not match the file is reported, not extracted.
    listing["data"]["latestVersion"]["files"][0]["dataFile"]["md5"] = "0" * 32
    (api / "index.html").write_text(json.dumps(listing))
    fresh = tmp_path / "ham2"
    report = download_ham10000(fresh, base_url=base, progress=False)
    assert [f.name for f in report.failed] == ["HAM10000_images_part_1.zip"]
    assert report.failed[0].reason.startswith("checksum mismatch")
    assert HAM10000_DOI.startswith("doi:10.7910/DVN/DBW86T")


def test_pad_ufes_20_nested_archive(server: tuple[str, Path], tmp_path: Path) -> None:
    base, www = server
    src = syn.make_pad_ufes_20(tmp_path / "src", n_images=4, n_metadata_only=1)
    inner = tmp_path / "imgs_part_1.zip"
    with zipfile.ZipFile(inner, "w") as zipped:
        for path in sorted((src / "images").iterdir()):
            zipped.write(path, f"imgs_part_1/{path.name}")
    with zipfile.ZipFile(www / "zr7vgbcyr2-1.zip", "w") as zipped:
        zipped.write(src / "metadata.csv", "zr7vgbcyr2-1/metadata.csv")
        zipped.write(inner, "zr7vgbcyr2-1/images/imgs_part_1.zip")
    dest = tmp_path / "pad"
    report = download_pad_ufes_20(dest, base_url=f"{base}/zr7vgbcyr2-1.zip", progress=False)
    assert report.ok and report.downloaded == 1
    index = load_index(None, dest)
    assert index["source"].iloc[0] == "pad-ufes-20"
    assert index["image_path"].notna().sum() == 4
    assert download_pad_ufes_20(dest, base_url=f"{base}/zr7vgbcyr2-1.zip", progress=False).skipped == 1
    bad = download_pad_ufes_20(tmp_path / "pad404", base_url=f"{base}/nope.zip", progress=False)
    assert "HTTP 404" in bad.failed[0].reason


def test_manual_datasets_explain_themselves(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="kaggle"):
        download("dermnet", tmp_path)


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="dermlib")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_cli_list_and_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("data", "list") == 0
    out = capsys.readouterr().out
    assert "fitzpatrick17k" in out and "isic2019" in out and "imagefolder" in out
    syn.make_image_folder(tmp_path / "set", ("benign", "malignant"), per_class=2)
    assert (
        _cli("data", "index", "auto", "--root", str(tmp_path / "set"), "--csv", str(tmp_path / "i.csv")) == 0
    )
    out = capsys.readouterr().out
    assert "4 records, 4 with an image" in out and "benign: 2" in out
    assert len(pd.read_csv(tmp_path / "i.csv")) == 4
    assert main(["data", "index", "fitzpatrick17k", "--root", str(tmp_path / "set")]) == 2
    assert "Missing metadata file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _cli("data", "index", "not-a-dataset", "--root", str(tmp_path))


def test_cli_download_lists_failures(
    server: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, www = server
    csv_url, n_good = _serve_fitzpatrick(tmp_path, base, www)
    code = _cli(
        "data", "download", "fitzpatrick17k", "--to", str(tmp_path / "f"), "--base-url", csv_url, "--quiet"
    )
    out = capsys.readouterr().out
    assert code == 1
    assert f"{1 + n_good} downloaded" in out and out.count("FAILED") == 2
