"""Display names and risk groups of each dataset's own labels.

One table per dataset with a fixed label set (HAM10000, ISIC 2019, PAD-UFES-20, DermNet). Fitzpatrick17k
carries its risk group in its csv (``three_partition_label``), so it needs no table here.

Risk groups follow Fitzpatrick17k's three-partition convention: actinic keratosis (a precursor of squamous
cell carcinoma) counts as malignant, as it does there. Canonical cross-dataset conditions live elsewhere
(``dermlib.knowledge``); these tables only describe each dataset as published.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class LabelInfo(NamedTuple):
    """How one dataset label is shown and grouped."""

    display_name: str
    risk_group: str


HAM10000_LABELS: dict[str, LabelInfo] = {
    "akiec": LabelInfo("Actinic keratosis / intraepithelial carcinoma", "malignant"),
    "bcc": LabelInfo("Basal cell carcinoma", "malignant"),
    "bkl": LabelInfo("Benign keratosis-like lesion", "benign"),
    "df": LabelInfo("Dermatofibroma", "benign"),
    "mel": LabelInfo("Melanoma", "malignant"),
    "nv": LabelInfo("Melanocytic nevus", "benign"),
    "vasc": LabelInfo("Vascular lesion", "benign"),
}

# Column names of ISIC_2019_Training_GroundTruth.csv (lower-cased) in their published order.
ISIC2019_LABELS: dict[str, LabelInfo] = {
    "mel": LabelInfo("Melanoma", "malignant"),
    "nv": LabelInfo("Melanocytic nevus", "benign"),
    "bcc": LabelInfo("Basal cell carcinoma", "malignant"),
    "ak": LabelInfo("Actinic keratosis", "malignant"),
    "bkl": LabelInfo("Benign keratosis-like lesion", "benign"),
    "df": LabelInfo("Dermatofibroma", "benign"),
    "vasc": LabelInfo("Vascular lesion", "benign"),
    "scc": LabelInfo("Squamous cell carcinoma", "malignant"),
}

PAD_UFES_20_LABELS: dict[str, LabelInfo] = {
    "ACK": LabelInfo("Actinic keratosis", "malignant"),
    "BCC": LabelInfo("Basal cell carcinoma", "malignant"),
    "MEL": LabelInfo("Melanoma", "malignant"),
    "NEV": LabelInfo("Nevus", "benign"),
    "SCC": LabelInfo("Squamous cell carcinoma", "malignant"),
    "SEK": LabelInfo("Seborrheic keratosis", "benign"),
}

# PH2's three diagnoses (Mendonca et al., EMBC 2013), as its metadata.csv spells them. An atypical naevus is
# benign: it is the look-alike a melanoma classifier must learn to leave alone, not an early melanoma.
PH2_LABELS: dict[str, LabelInfo] = {
    "common-nevus": LabelInfo("Common naevus", "benign"),
    "atypical-nevus": LabelInfo("Atypical naevus", "benign"),
    "melanoma": LabelInfo("Melanoma", "malignant"),
}

# The 23 class folders of the DermNet collection as distributed on Kaggle (train/ and test/).
# "Melanoma Skin Cancer Nevi and Moles" mixes melanoma with nevi; it is grouped malignant because the
# harm of missing a melanoma outweighs that of over-referring a nevus.
DERMNET_FOLDERS: dict[str, LabelInfo] = {
    "Acne and Rosacea Photos": LabelInfo("Acne and rosacea", "non-neoplastic"),
    "Actinic Keratosis Basal Cell Carcinoma and other Malignant Lesions": LabelInfo(
        "Actinic keratosis, basal cell carcinoma and other malignant lesions", "malignant"
    ),
    "Atopic Dermatitis Photos": LabelInfo("Atopic dermatitis", "non-neoplastic"),
    "Bullous Disease Photos": LabelInfo("Bullous disease", "non-neoplastic"),
    "Cellulitis Impetigo and other Bacterial Infections": LabelInfo(
        "Cellulitis, impetigo and other bacterial infections", "non-neoplastic"
    ),
    "Eczema Photos": LabelInfo("Eczema", "non-neoplastic"),
    "Exanthems and Drug Eruptions": LabelInfo("Exanthems and drug eruptions", "non-neoplastic"),
    "Hair Loss Photos Alopecia and other Hair Diseases": LabelInfo(
        "Hair loss, alopecia and other hair diseases", "non-neoplastic"
    ),
    "Herpes HPV and other STDs Photos": LabelInfo("Herpes, HPV and other STDs", "non-neoplastic"),
    "Light Diseases and Disorders of Pigmentation": LabelInfo(
        "Light diseases and disorders of pigmentation", "non-neoplastic"
    ),
    "Lupus and other Connective Tissue diseases": LabelInfo(
        "Lupus and other connective tissue diseases", "non-neoplastic"
    ),
    "Melanoma Skin Cancer Nevi and Moles": LabelInfo("Melanoma, skin cancer, nevi and moles", "malignant"),
    "Nail Fungus and other Nail Disease": LabelInfo("Nail fungus and other nail disease", "non-neoplastic"),
    "Poison Ivy Photos and other Contact Dermatitis": LabelInfo(
        "Poison ivy and other contact dermatitis", "non-neoplastic"
    ),
    "Psoriasis pictures Lichen Planus and related diseases": LabelInfo(
        "Psoriasis, lichen planus and related diseases", "non-neoplastic"
    ),
    "Scabies Lyme Disease and other Infestations and Bites": LabelInfo(
        "Scabies, Lyme disease and other infestations and bites", "non-neoplastic"
    ),
    "Seborrheic Keratoses and other Benign Tumors": LabelInfo(
        "Seborrheic keratoses and other benign tumours", "benign"
    ),
    "Systemic Disease": LabelInfo("Systemic disease", "non-neoplastic"),
    "Tinea Ringworm Candidiasis and other Fungal Infections": LabelInfo(
        "Tinea, ringworm, candidiasis and other fungal infections", "non-neoplastic"
    ),
    "Urticaria Hives": LabelInfo("Urticaria (hives)", "non-neoplastic"),
    "Vascular Tumors": LabelInfo("Vascular tumours", "benign"),
    "Vasculitis Photos": LabelInfo("Vasculitis", "non-neoplastic"),
    "Warts Molluscum and other Viral Infections": LabelInfo(
        "Warts, molluscum and other viral infections", "non-neoplastic"
    ),
}

# Folder names that name a risk group themselves (e.g. the dermoscopy-melanoma layout).
RISK_GROUP_FOLDERS: dict[str, str] = {
    "benign": "benign",
    "malignant": "malignant",
    "non-neoplastic": "non-neoplastic",
    "non_neoplastic": "non-neoplastic",
}

_SLUG_DROP = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """Return the hyphen slug of a label: ``"Acne vulgaris"`` -> ``"acne-vulgaris"``."""
    return _SLUG_DROP.sub("-", text.strip().lower()).strip("-")


#: Abbreviations that a slug ends with, written as a reader expects them.
_TRAILING_ABBREVIATIONS = {"ssm": "SSM"}


def humanize(label: str) -> str:
    """Turn a folder or slug label into a readable name: ``"acne-vulgaris"`` -> ``"Acne vulgaris"``.

    A trailing abbreviation goes in capitals and parentheses:
    ``"superficial-spreading-melanoma-ssm"`` -> ``"Superficial spreading melanoma (SSM)"``.
    """
    text = re.sub(r"[-_]+", " ", label).strip()
    head, _, last = text.rpartition(" ")
    if head and last.lower() in _TRAILING_ABBREVIATIONS:
        text = f"{head} ({_TRAILING_ABBREVIATIONS[last.lower()]})"
    return text[:1].upper() + text[1:] if text else label


def dermnet_label(folder: str) -> str:
    """Return the index label (slug) of a DermNet class folder."""
    return slugify(folder)


DERMNET_LABELS: dict[str, LabelInfo] = {dermnet_label(k): v for k, v in DERMNET_FOLDERS.items()}

# The 24 coarse categories of the DermNet NZ topic-page collection (``dermnet/`` beside the project).
# A category groups several DermNet topics (``dermnet_topic``), so names stay general. Risk groups follow
# Fitzpatrick17k's three-partition labels where the two sets share a condition (actinic keratosis is
# grouped malignant there, as a precancer that needs treatment; keloid non-neoplastic).
DERMNET_NZ_CATEGORIES: dict[str, LabelInfo] = {
    "acne": LabelInfo("Acne", "non-neoplastic"),
    "actinic-keratosis": LabelInfo("Actinic keratosis", "malignant"),
    "alopecia-areata": LabelInfo("Alopecia areata", "non-neoplastic"),
    "bacterial-infection": LabelInfo("Bacterial skin infection (impetigo, cellulitis, ...)", "non-neoplastic"),
    "basal-cell-carcinoma": LabelInfo("Basal cell carcinoma", "malignant"),
    "bullous-disease": LabelInfo("Blistering (bullous) disease", "non-neoplastic"),
    "eczema": LabelInfo("Eczema", "non-neoplastic"),
    "fungal-infection": LabelInfo("Fungal skin infection (ringworm, tinea, candida)", "non-neoplastic"),
    "herpes": LabelInfo("Herpes simplex and shingles", "non-neoplastic"),
    "hidradenitis-suppurativa": LabelInfo("Hidradenitis suppurativa", "non-neoplastic"),
    "keloid": LabelInfo("Keloid", "non-neoplastic"),
    "lichen-planus": LabelInfo("Lichen planus", "non-neoplastic"),
    "light-related": LabelInfo("Light-related skin disease", "non-neoplastic"),
    "lupus": LabelInfo("Lupus (cutaneous)", "non-neoplastic"),
    "melanocytic-naevus": LabelInfo("Melanocytic naevus (mole)", "benign"),
    "melanoma": LabelInfo("Melanoma", "malignant"),
    "molluscum": LabelInfo("Molluscum contagiosum", "non-neoplastic"),
    "psoriasis": LabelInfo("Psoriasis", "non-neoplastic"),
    "rosacea": LabelInfo("Rosacea", "non-neoplastic"),
    "scabies": LabelInfo("Scabies", "non-neoplastic"),
    "squamous-cell-carcinoma": LabelInfo("Squamous cell carcinoma", "malignant"),
    "urticaria": LabelInfo("Urticaria (hives)", "non-neoplastic"),
    "vasculitis-purpura": LabelInfo("Vasculitis and purpura", "non-neoplastic"),
    "vitiligo": LabelInfo("Vitiligo", "non-neoplastic"),
}
