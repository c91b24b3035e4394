"""The class labels that public dermatology datasets use, in one place.

The dataset adapters reuse these lists, and the knowledge-base tests enumerate them so that a label
without a Disease Library entry fails the build. Fitzpatrick17k's 114 labels are not repeated here: its
CSV (``label`` column) is their source of truth.

Labels are written exactly as each dataset spells them (case and spaces included); matching against
the knowledge base goes through :func:`normalise_label` and :func:`normalise_dataset`.
"""

from __future__ import annotations

import re

#: Every fixed label list, by dataset name (the prefix used in ``dataset_labels`` entries).
KNOWN_DATASET_LABELS: dict[str, tuple[str, ...]] = {
    # HAM10000 ``dx`` codes (Tschandl et al., Sci Data 2018).
    "ham10000": ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"),
    # ISIC 2019 challenge diagnosis columns (the "UNK" column is not a class).
    "isic2019": ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC"),
    # PAD-UFES-20 ``diagnostic`` values (Pacheco et al., Data in Brief 2020).
    "pad-ufes-20": ("ACK", "BCC", "MEL", "NEV", "SCC", "SEK"),
    # The 23 class folders of the DermNet image collection (as distributed on Kaggle).
    "dermnet": (
        "Acne and Rosacea Photos",
        "Actinic Keratosis Basal Cell Carcinoma and other Malignant Lesions",
        "Atopic Dermatitis Photos",
        "Bullous Disease Photos",
        "Cellulitis Impetigo and other Bacterial Infections",
        "Eczema Photos",
        "Exanthems and Drug Eruptions",
        "Hair Loss Photos Alopecia and other Hair Diseases",
        "Herpes HPV and other STDs Photos",
        "Light Diseases and Disorders of Pigmentation",
        "Lupus and other Connective Tissue diseases",
        "Melanoma Skin Cancer Nevi and Moles",
        "Nail Fungus and other Nail Disease",
        "Poison Ivy Photos and other Contact Dermatitis",
        "Psoriasis pictures Lichen Planus and related diseases",
        "Scabies Lyme Disease and other Infestations and Bites",
        "Seborrheic Keratoses and other Benign Tumors",
        "Systemic Disease",
        "Tinea Ringworm Candidiasis and other Fungal Infections",
        "Urticaria Hives",
        "Vascular Tumors",
        "Vasculitis Photos",
        "Warts Molluscum and other Viral Infections",
    ),
    # The 24 ``category`` values of the DermNet NZ collection in shared/data/dermnet (its ``metadata.csv``
    # lists, in ``dermnet_topic``, the DermNet NZ topics merged into each category).
    "dermnet-nz": (
        "acne",
        "actinic-keratosis",
        "alopecia-areata",
        "bacterial-infection",
        "basal-cell-carcinoma",
        "bullous-disease",
        "eczema",
        "fungal-infection",
        "herpes",
        "hidradenitis-suppurativa",
        "keloid",
        "lichen-planus",
        "light-related",
        "lupus",
        "melanocytic-naevus",
        "melanoma",
        "molluscum",
        "psoriasis",
        "rosacea",
        "scabies",
        "squamous-cell-carcinoma",
        "urticaria",
        "vasculitis-purpura",
        "vitiligo",
    ),
}

#: Human-readable names of the datasets the knowledge base refers to.
DATASET_DISPLAY_NAMES: dict[str, str] = {
    "fitzpatrick17k": "Fitzpatrick17k",
    "ham10000": "HAM10000",
    "isic2019": "ISIC 2019",
    "pad-ufes-20": "PAD-UFES-20",
    "dermnet": "DermNet",
    "dermnet-nz": "DermNet NZ",
    "dermoscopy-melanoma": "Dermoscopy melanoma (ISIC archive)",
}

#: Class ids that name a risk group rather than a condition (binary and three-way models use them);
#: they have no Disease Library entry of their own.
RISK_GROUP_CLASS_IDS: frozenset[str] = frozenset({"benign", "malignant", "non-neoplastic"})

_NON_SLUG = re.compile(r"[^a-z0-9]+")


def normalise_label(label: str) -> str:
    """Return the hyphen-slug form of a label: lower case, runs of other characters become one hyphen.

    ``"Acne vulgaris"``, ``"acne_vulgaris"`` and ``"ACNE-VULGARIS"`` all become ``"acne-vulgaris"``.

    Args:
        label: A condition id, alias or dataset label, in any case and spacing.

    Returns:
        The slug; empty when the label has no letters or digits.
    """
    return _NON_SLUG.sub("-", label.casefold()).strip("-")


def normalise_dataset(dataset: str) -> str:
    """Return a dataset name's matching key: its slug without hyphens.

    Dataset names are spelt inconsistently in the wild (``"HAM10000"``, ``"PAD-UFES-20"``,
    ``"pad_ufes_20"``, ``"ISIC 2019"``); dropping separators makes them compare equal.

    Args:
        dataset: A dataset name in any spelling.

    Returns:
        The key, e.g. ``"padufes20"``.
    """
    return normalise_label(dataset).replace("-", "")


def dataset_display_name(dataset: str) -> str:
    """Return the display name of a dataset, or the name itself when it is not a known one."""
    key = normalise_dataset(dataset)
    for name, display in DATASET_DISPLAY_NAMES.items():
        if normalise_dataset(name) == key:
            return display
    return dataset
