"""Tiny project-made datasets in each supported layout, for tests and demos.

The images are random smooth colour fields (distinct per image, so perceptual hashes differ); the
metadata imitates each dataset's published files column for column. Nothing here is real data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from dermlib.data import labels as label_tables


def make_image(path: Path, seed: int, size: tuple[int, int] = (64, 48), fmt: str | None = None) -> Path:
    """Write a small, distinctive image (smooth random blobs) to ``path`` and return the path."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(coarse, "RGB").resize(size, Image.Resampling.BICUBIC)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt)
    return path


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_image_folder(
    root: Path,
    classes: Sequence[str] = ("benign", "malignant"),
    per_class: int = 3,
    splits: Sequence[str] | None = None,
    images_dir: bool = True,
    seed: int = 0,
) -> Path:
    """Write ``ROOT/[images/][<split>/]<class>/img_<n>.jpg`` and return ``root``."""
    base = root / "images" if images_dir else root
    n = seed
    for split in splits or [None]:
        for cls in classes:
            folder = base / split / cls if split else base / cls
            for k in range(per_class):
                make_image(folder / f"img_{k}.jpg", n)
                n += 1
    return root


def make_dermnet(root: Path, n_classes: int = 4, per_class: int = 2, seed: int = 100) -> Path:
    """Write a DermNet-style ``train/`` + ``test/`` tree with the first ``n_classes`` real folder names."""
    classes = list(label_tables.DERMNET_FOLDERS)[:n_classes]
    return make_image_folder(root, classes, per_class, splits=("train", "test"), images_dir=False, seed=seed)


def make_fitzpatrick17k(
    root: Path, n_images: int = 6, n_metadata_only: int = 3, flat: bool = False, seed: int = 200
) -> Path:
    """Write ``fitzpatrick17k.csv`` and ``images/<label>/<md5>.jpg`` (or flat ``images/<md5>.jpg``).

    Images are named by the md5 of their own bytes, as in the real dataset, so downloads verify.
    """
    choices = [
        ("acne vulgaris", "inflammatory", "non-neoplastic"),
        ("melanoma", "malignant melanoma", "malignant"),
        ("seborrheic keratosis", "benign epidermal", "benign"),
    ]
    rows = []
    tmp = root / "images" / "_tmp"
    for k in range(n_images + n_metadata_only):
        label, nine, three = choices[k % len(choices)]
        made = make_image(tmp / f"{k}.jpg", seed + k)
        digest = _md5(made)
        slug = label_tables.slugify(label)
        if k < n_images:
            target = root / "images" / (digest + ".jpg" if flat else f"{slug}/{digest}.jpg")
            target.parent.mkdir(parents=True, exist_ok=True)
            made.replace(target)
        else:
            made.unlink()
        fitz = [-1, 1, 2, 3, 4, 5, 6][k % 7]
        url = f"https://example.invalid/atlas/{slug}/{k}.jpg"
        rows.append(
            {
                "md5hash": digest,
                "fitzpatrick_scale": fitz,
                "fitzpatrick_centaur": fitz,
                "label": label,
                "nine_partition_label": nine,
                "three_partition_label": three,
                "qc": None,
                "url": url,
                "url_alphanum": url.replace("/", "").replace(":", "").replace(".", ""),
            }
        )
    tmp.rmdir()
    pd.DataFrame(rows).to_csv(root / "fitzpatrick17k.csv", index=False)
    return root


def make_ham10000(root: Path, n_images: int = 6, n_metadata_only: int = 2, seed: int = 300) -> Path:
    """Write ``HAM10000_metadata.csv`` and ``HAM10000_images_part_1/ISIC_*.jpg`` (two images per lesion)."""
    codes = list(label_tables.HAM10000_LABELS)
    rows = []
    for k in range(n_images + n_metadata_only):
        image_id = f"ISIC_{9000000 + k:07d}"
        if k < n_images:
            make_image(root / "HAM10000_images_part_1" / f"{image_id}.jpg", seed + k)
        rows.append(
            {
                "lesion_id": f"HAM_{k // 2:07d}",
                "image_id": image_id,
                "dx": codes[(k // 2) % len(codes)],
                "dx_type": "histo",
                "age": 30.0 + k if k % 4 else None,
                "sex": ["male", "female", "unknown"][k % 3],
                "localization": ["back", "face", "unknown"][k % 3],
            }
        )
    pd.DataFrame(rows).to_csv(root / "HAM10000_metadata.csv", index=False)
    return root


def make_pad_ufes_20(root: Path, n_images: int = 6, n_metadata_only: int = 2, seed: int = 400) -> Path:
    """Write PAD-UFES-20 ``metadata.csv`` (img_id ``.png``) and ``images/PAT_*.jpg`` (converted copies)."""
    codes = list(label_tables.PAD_UFES_20_LABELS)
    rows = []
    for k in range(n_images + n_metadata_only):
        patient = f"PAT_{k // 2}"
        img_id = f"{patient}_{100 + k}_{500 + k}.png"
        if k < n_images:
            make_image(root / "images" / img_id.replace(".png", ".jpg"), seed + k)
        rows.append(
            {
                "patient_id": patient,
                "lesion_id": 100 + k,
                "age": 40 + k,
                "gender": ["FEMALE", "MALE", None][k % 3],
                "fitspatrick": [1.0, 2.0, None, 6.0][k % 4],
                "region": ["ARM", "FACE"][k % 2],
                "diagnostic": codes[k % len(codes)],
                "img_id": img_id,
                "biopsed": True,
            }
        )
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return root


def make_ph2(root: Path, n_images: int = 6, seed: int = 450) -> Path:
    """Write PH2's ``metadata.csv`` (diagnoses as PH2 spells them), ``images/IMDnnn.jpg`` and ``masks/IMDnnn.png``.

    The masks share the photos' stems, as in PH2, so an adapter that looked beyond ``images/`` would index them.
    """
    diagnoses = ["common nevus", "atypical nevus", "melanoma"]
    rows = []
    for k in range(n_images):
        image_id = f"IMD{k + 2:03d}"
        make_image(root / "images" / f"{image_id}.jpg", seed + k)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.new("L", (64, 48), 255 if k % 2 else 0).save(root / "masks" / f"{image_id}.png")
        rows.append({"image_id": image_id, "diagnosis": diagnoses[k % 3], "asymmetry": k % 3})
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return root


def make_isic2019(root: Path, n_images: int = 8, seed: int = 500) -> Path:
    """Write the ISIC 2019 ground-truth and metadata csvs and ``ISIC_2019_Training_Input/*.jpg``."""
    classes = [c.upper() for c in label_tables.ISIC2019_LABELS]
    truth, meta = [], []
    for k in range(n_images):
        image = f"ISIC_{1000 + k:07d}" + ("_downsampled" if k == 0 else "")
        make_image(root / "ISIC_2019_Training_Input" / f"{image}.jpg", seed + k)
        one_hot = dict.fromkeys([*classes, "UNK"], 0.0)
        one_hot[classes[k % len(classes)]] = 1.0
        truth.append({"image": image, **one_hot})
        meta.append(
            {
                "image": image,
                "age_approx": 35.0 + 5 * k,
                "anatom_site_general": ["anterior torso", None][k % 2],
                "lesion_id": f"BCN_{k // 2:07d}" if k >= 2 else None,
                "sex": ["male", "female"][k % 2],
            }
        )
    pd.DataFrame(truth).to_csv(root / "ISIC_2019_Training_GroundTruth.csv", index=False)
    pd.DataFrame(meta).to_csv(root / "ISIC_2019_Training_Metadata.csv", index=False)
    return root


def make_dermnet_nz(root: Path, categories: Sequence[str] = ("eczema", "psoriasis", "melanoma"),
                    per_class: int = 4, n_copies: int = 1, seed: int = 600) -> Path:
    """Write the DermNet NZ topic-page layout: ``metadata.csv``, ``copies_in_other_sets.csv`` and
    ``images/<category>/<md5>.jpg`` (341 x 256, as the real photos).

    The first two photos of each category share a near-duplicate ``group_id``; the first ``n_copies``
    photos are listed in ``copies_in_other_sets.csv``. ``eczema_psoriasis`` is set for those two categories.
    """
    rows, n = [], seed
    tmp = root / "images" / "_tmp"
    for category in categories:
        for k in range(per_class):
            made = make_image(tmp / f"{n}.jpg", n, size=(341, 256))
            digest = _md5(made)
            target = root / "images" / category / f"{digest}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            made.replace(target)
            rows.append({
                "md5": digest, "category": category, "dermnet_topic": f"{category.title()} topic|Other topic",
                "width": 341, "height": 256,
                "group_id": f"g{category}-pair" if k < 2 else f"g{digest[:12]}",
                "eczema_psoriasis": category if category in ("eczema", "psoriasis") else None,
            })
            n += 1
    tmp.rmdir()
    meta = pd.DataFrame(rows)
    meta.to_csv(root / "metadata.csv", index=False)
    copies = meta.head(n_copies)[["md5", "category"]].assign(other_file="fitzpatrick17k/images/x/y.jpg")
    copies.to_csv(root / "copies_in_other_sets.csv", index=False)
    return root
