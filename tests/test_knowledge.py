"""Tests of dermlib.knowledge: the entry schema, loading, label resolution, search and label coverage."""

from __future__ import annotations

import copy
import csv
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from dermlib.config import shared_data_root
from dermlib.errors import KnowledgeError
from dermlib.knowledge import (
    CONDITIONS_DIR,
    KNOWN_DATASET_LABELS,
    RISK_GROUP_CLASS_IDS,
    KnowledgeBase,
    condition_link,
    load_knowledge_base,
    models_for,
    normalise_label,
    resolve_card_class,
    validate_entry,
)

# ---------------------------------------------------------------------------------------------- helpers


def make_entry(entry_id: str = "acne", **overrides: Any) -> dict[str, Any]:
    """Return a valid entry; keyword arguments replace fields."""
    entry: dict[str, Any] = {
        "id": entry_id,
        "name": entry_id.replace("-", " ").capitalize(),
        "aliases": [],
        "dataset_labels": [f"fitzpatrick17k:{entry_id}"],
        "risk_group": "non-neoplastic",
        "urgency": "routine",
        "contagious": "no",
        "summary": f"A short plain summary of {entry_id}.",
        "description": "What it is.",
        "appearance": "How it looks.",
        "appearance_darker_skin": "How it looks on brown and black skin.",
        "symptoms": ["itch"],
        "causes": ["a cause"],
        "treatment": "What a clinician may do.",
        "when_to_see_doctor": "When to seek care.",
        "references": [
            {"title": "Topic", "publisher": "DermNet", "url": "https://dermnetnz.org/topics/topic"},
            {"title": "Topic", "publisher": "NHS", "url": "https://www.nhs.uk/conditions/topic/"},
        ],
        "review": {"date": "2026-11-22", "method": "Checked against sources.", "clinician_reviewed": False},
    }
    entry.update(overrides)
    return entry


def write_entries(folder: Path, *entries: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        (folder / f"{entry['id']}.json").write_text(json.dumps(entry, indent=2), encoding="utf-8")
    return folder


@pytest.fixture
def small_kb(tmp_path: Path) -> KnowledgeBase:
    """A knowledge base of a few hand-made entries, independent of the bundled library."""
    entries = [
        make_entry(
            "acne",
            name="Acne vulgaris",
            aliases=["acne", "pimples"],
            dataset_labels=[
                "fitzpatrick17k:acne",
                "fitzpatrick17k:acne-vulgaris",
                "dermnet:Acne and Rosacea Photos",
            ],
            symptoms=["spots", "greasy skin"],
        ),
        make_entry(
            "melanoma",
            name="Melanoma",
            aliases=["malignant melanoma"],
            dataset_labels=["fitzpatrick17k:melanoma", "ham10000:mel", "isic2019:MEL", "pad-ufes-20:MEL"],
            risk_group="malignant",
            urgency="soon",
            description="A skin cancer that can look like an irregular mole.",
        ),
        make_entry(
            "nevocytic-nevus",
            name="Melanocytic naevus (mole)",
            aliases=["mole", "nevus"],
            dataset_labels=[
                "fitzpatrick17k:nevocytic-nevus",
                "ham10000:nv",
                "isic2019:NV",
                "pad-ufes-20:NEV",
            ],
            risk_group="benign",
            summary="A common mole. A changing mole should be checked for melanoma.",
        ),
        make_entry(
            "basal-cell-carcinoma",
            name="Basal cell carcinoma",
            dataset_labels=[
                "fitzpatrick17k:basal-cell-carcinoma",
                "ham10000:bcc",
                "isic2019:BCC",
                "pad-ufes-20:BCC",
            ],
            risk_group="malignant",
            urgency="soon",
        ),
        make_entry(
            "scabies",
            name="Scabies",
            dataset_labels=["fitzpatrick17k:scabies", "dermnet:Shared Folder"],
            contagious="yes",
            symptoms=["itch at night"],
        ),
        make_entry("tinea", name="Tinea", dataset_labels=["dermnet:Shared-Folder-Two"], contagious="yes"),
        make_entry("lichen-planus", name="Lichen planus", dataset_labels=["other:shared"]),
        make_entry("psoriasis", name="Psoriasis", dataset_labels=["another:shared"]),
    ]
    return load_knowledge_base(write_entries(tmp_path / "kb", *entries))


# ---------------------------------------------------------------------------------- the bundled entries


def bundled_paths() -> list[Path]:
    return sorted(p for p in CONDITIONS_DIR.glob("*.json") if not p.name.startswith("."))


def test_bundled_entries_pass_the_schema() -> None:
    # The library is written in parallel with this code: check whatever entries exist.
    paths = bundled_paths()
    if not paths:
        pytest.skip("no knowledge-base entries yet")
    for path in paths:
        validate_entry(json.loads(path.read_text(encoding="utf-8")), path)
    kb = load_knowledge_base(CONDITIONS_DIR)  # also checks ids/aliases/labels are unique across files
    assert sorted(kb.ids) == sorted(p.stem for p in paths)
    for condition in kb:
        assert condition.review.method and len(condition.references) >= 2


def test_bundled_labels_of_known_datasets_are_spelt_as_the_datasets_spell_them() -> None:
    kb = load_knowledge_base(CONDITIONS_DIR)
    wrong = [
        f"{c.id}: {dataset}:{label}"
        for c in kb
        for dataset, label in c.dataset_label_pairs
        if dataset in KNOWN_DATASET_LABELS and label not in KNOWN_DATASET_LABELS[dataset]
    ]
    assert not wrong, f"labels not in KNOWN_DATASET_LABELS: {wrong}"


def test_default_load_is_cached() -> None:
    assert load_knowledge_base() is load_knowledge_base()


@pytest.mark.parametrize("dataset", sorted(KNOWN_DATASET_LABELS))
def test_every_known_dataset_label_has_an_entry(dataset: str) -> None:
    kb = load_knowledge_base(CONDITIONS_DIR)
    missing = [label for label in KNOWN_DATASET_LABELS[dataset] if kb.resolve(label, dataset) is None]
    assert not missing, f"{dataset} labels without a Disease Library entry: {missing}"


#: The 24 categories of the DermNet NZ collection (shared/data/dermnet), the class ids of its models.
DERMNET_NZ_CATEGORIES = (
    "acne", "actinic-keratosis", "alopecia-areata", "bacterial-infection", "basal-cell-carcinoma",
    "bullous-disease", "eczema", "fungal-infection", "herpes", "hidradenitis-suppurativa", "keloid",
    "lichen-planus", "light-related", "lupus", "melanocytic-naevus", "melanoma", "molluscum", "psoriasis",
    "rosacea", "scabies", "squamous-cell-carcinoma", "urticaria", "vasculitis-purpura", "vitiligo",
)  # fmt: skip


def test_every_dermnet_nz_category_resolves_to_an_entry() -> None:
    assert KNOWN_DATASET_LABELS["dermnet-nz"] == DERMNET_NZ_CATEGORIES
    kb = load_knowledge_base(CONDITIONS_DIR)
    for category in DERMNET_NZ_CATEGORIES:
        found = kb.resolve(category, "dermnet-nz")
        assert found is not None, f"dermnet-nz:{category} has no Disease Library entry"
        # Every spelling a model card or page may use lands on the same entry.
        assert kb.resolve(f"dermnet-nz:{category}") == found
        assert kb.resolve(category) == found, category
        assert f"dermnet-nz:{category}" in found.dataset_labels
        assert "dermnet-nz" in kb.datasets_for(found.id)


@pytest.mark.parametrize(
    ("category", "expected_id", "words"),
    [
        ("fungal-infection", "tinea", ("ringworm", "tinea", "candida", "pityriasis versicolor")),
        ("bacterial-infection", "bacterial-skin-infection", ("impetigo", "cellulitis", "boil", "abscess")),
        ("bullous-disease", "autoimmune-bullous-disease", ("pemphigoid", "pemphigus")),
        ("herpes", "herpesvirus-infection", ("herpes simplex", "cold sores", "shingles")),
        ("light-related", "light-related-skin-reaction", ("sunburn", "polymorphic light eruption")),
        ("vasculitis-purpura", "purpura", ("purpura", "vasculitis", "pigmented purpura")),
        ("melanocytic-naevus", "nevocytic-nevus", ("mole",)),
        ("molluscum", "molluscum-contagiosum", ("molluscum",)),
        ("hidradenitis-suppurativa", "hidradenitis", ("hidradenitis suppurativa",)),
        ("lupus", "lupus-erythematosus", ("lupus",)),
    ],
)
def test_dermnet_nz_category_maps_to_the_right_entry(
    category: str, expected_id: str, words: tuple[str, ...]
) -> None:
    found = load_knowledge_base(CONDITIONS_DIR).resolve(category, "dermnet-nz")
    assert found is not None and found.id == expected_id
    text = found.search_text()
    assert [word for word in words if word not in text] == []


@pytest.mark.data
def test_dermnet_nz_labels_match_the_collection() -> None:
    root = shared_data_root()
    csv_path = root / "dermnet" / "metadata.csv" if root else None
    if csv_path is None or not csv_path.is_file():
        pytest.skip("DermNet NZ metadata not present under ../shared/data")
    with csv_path.open(newline="", encoding="utf-8") as handle:
        categories = sorted({row["category"] for row in csv.DictReader(handle)})
    assert categories == sorted(KNOWN_DATASET_LABELS["dermnet-nz"])


@pytest.fixture(scope="module")
def fitzpatrick_labels() -> list[str]:
    root = shared_data_root()
    csv_path = root / "fitzpatrick17k" / "fitzpatrick17k.csv" if root else None
    if csv_path is None or not csv_path.is_file():
        pytest.skip("Fitzpatrick17k CSV not present under ../shared/data")
    with csv_path.open(newline="", encoding="utf-8") as handle:
        return sorted({row["label"] for row in csv.DictReader(handle)})


@pytest.mark.data
def test_every_fitzpatrick17k_label_has_an_entry(fitzpatrick_labels: list[str]) -> None:
    assert len(fitzpatrick_labels) == 114
    kb = load_knowledge_base(CONDITIONS_DIR)
    # The CSV spells labels with spaces ("acne vulgaris"); resolution must absorb that.
    missing = [label for label in fitzpatrick_labels if kb.resolve(label, "fitzpatrick17k") is None]
    assert not missing, f"Fitzpatrick17k labels without a Disease Library entry: {missing}"
    via_string = [label for label in fitzpatrick_labels if kb.resolve(f"fitzpatrick17k:{label}") is None]
    assert via_string == missing


def test_every_installed_model_class_has_an_entry() -> None:
    try:
        from dermlib.models import list_models
    except ImportError:
        pytest.skip("dermlib.models is not available yet")
    kb = load_knowledge_base(CONDITIONS_DIR)
    missing = [
        f"{card.id}:{cls.id}"
        for card in list_models()
        for cls in card.classes
        # Binary / three-way models name risk groups, which are not conditions.
        if normalise_label(cls.id) not in RISK_GROUP_CLASS_IDS and resolve_card_class(kb, card, cls) is None
    ]
    assert not missing, f"model classes without a Disease Library entry: {missing}"


# ------------------------------------------------------------------------------------------ the schema


def assert_rejected(tmp_path: Path, entry: dict[str, Any], field: str) -> None:
    folder = write_entries(tmp_path / "bad", entry)
    with pytest.raises(KnowledgeError) as info:
        load_knowledge_base(folder)
    message = str(info.value)
    assert f"{entry['id']}.json" in message
    assert f"'{field}'" in message


def test_valid_entry_loads(tmp_path: Path) -> None:
    kb = load_knowledge_base(write_entries(tmp_path, make_entry("acne")))
    condition = kb.get("acne")
    assert condition.name == "Acne"
    assert condition.references[1].publisher == "NHS"
    assert condition.review.clinician_reviewed is False
    assert condition.dataset_label_pairs == (("fitzpatrick17k", "acne"),)


@pytest.mark.parametrize(
    "field", ["name", "appearance_darker_skin", "symptoms", "references", "review", "dataset_labels"]
)
def test_missing_field_is_rejected(tmp_path: Path, field: str) -> None:
    entry = make_entry("acne")
    del entry[field]
    assert_rejected(tmp_path, entry, field)


def test_missing_reference_url_and_review_flag_are_rejected(tmp_path: Path) -> None:
    entry = make_entry("acne")
    del entry["references"][0]["url"]
    assert_rejected(tmp_path / "a", entry, "references[0].url")
    entry = make_entry("acne")
    del entry["review"]["clinician_reviewed"]
    assert_rejected(tmp_path / "b", entry, "review.clinician_reviewed")


@pytest.mark.parametrize(
    ("field", "value"),
    [("risk_group", "cancer"), ("urgency", "asap"), ("contagious", "maybe"), ("urgency", "Urgent")],
)
def test_bad_enum_is_rejected(tmp_path: Path, field: str, value: str) -> None:
    assert_rejected(tmp_path, make_entry("acne", **{field: value}), field)


@pytest.mark.parametrize(
    "url",
    [
        "http://dermnetnz.org/topics/acne",
        "https://localhost/acne",
        "https://dermnetnz.org/topics/acne vulgaris",
        "dermnetnz.org/topics/acne",
        "ftp://dermnetnz.org/acne",
        "https://",
        "",
    ],
)
def test_bad_url_is_rejected(tmp_path: Path, url: str) -> None:
    entry = make_entry("acne")
    entry["references"][1]["url"] = url
    assert_rejected(tmp_path, entry, "references[1].url")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"summary": "x" * 301}, "summary"),
        ({"summary": "   "}, "summary"),
        ({"symptoms": []}, "symptoms"),
        ({"causes": ["ok", ""]}, "causes[1]"),
        ({"aliases": "acne"}, "aliases"),
        ({"dataset_labels": ["acne"]}, "dataset_labels[0]"),
        ({"dataset_labels": ["Fitz 17k:acne"]}, "dataset_labels[0]"),
        ({"dataset_labels": ["fitzpatrick17k: acne"]}, "dataset_labels[0]"),
        ({"description": 3}, "description"),
        ({"extra": "field"}, "extra"),
    ],
)
def test_malformed_field_is_rejected(tmp_path: Path, overrides: dict[str, Any], field: str) -> None:
    assert_rejected(tmp_path, make_entry("acne", **overrides), field)


def test_reference_and_review_shape_are_checked(tmp_path: Path) -> None:
    one_ref = make_entry("acne")
    one_ref["references"] = one_ref["references"][:1]
    assert_rejected(tmp_path / "a", one_ref, "references")
    no_publisher = make_entry("acne")
    no_publisher["references"][0]["publisher"] = ""
    assert_rejected(tmp_path / "b", no_publisher, "references[0].publisher")
    bad_date = make_entry("acne")
    bad_date["review"]["date"] = "22/11/2026"
    assert_rejected(tmp_path / "c", bad_date, "review.date")
    string_flag = make_entry("acne")
    string_flag["review"]["clinician_reviewed"] = "no"
    assert_rejected(tmp_path / "d", string_flag, "review.clinician_reviewed")


def test_id_must_be_slug_shaped_and_match_the_file_name(tmp_path: Path) -> None:
    assert_rejected(tmp_path / "a", make_entry("Acne_Vulgaris"), "id")
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "acne.json").write_text(json.dumps(make_entry("pimples")), encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"acne\.json: field 'id' must equal the file name 'acne'"):
        load_knowledge_base(folder)


def test_invalid_json_names_the_file(tmp_path: Path) -> None:
    tmp_path.joinpath("acne.json").write_text('{"id": "acne",', encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"acne\.json.*not valid JSON"):
        load_knowledge_base(tmp_path)


def test_missing_folder_is_a_knowledge_error(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match="does not exist"):
        load_knowledge_base(tmp_path / "nowhere")


def test_duplicate_dataset_label_across_entries_is_rejected(tmp_path: Path) -> None:
    folder = write_entries(
        tmp_path,
        make_entry("melanoma", dataset_labels=["ham10000:mel"]),
        make_entry("lentigo-maligna", dataset_labels=["ham10000:MEL"]),
    )
    with pytest.raises(KnowledgeError, match=r"melanoma\.json.*'dataset_labels\[0\]'.*already listed"):
        load_knowledge_base(folder)


def test_alias_clashes_are_rejected(tmp_path: Path) -> None:
    same_alias = write_entries(
        tmp_path / "a",
        make_entry("eczema", aliases=["Dermatitis"]),
        make_entry("seborrheic-dermatitis", aliases=["dermatitis"]),
    )
    with pytest.raises(KnowledgeError, match=r"'aliases\[0\]'.*already an alias"):
        load_knowledge_base(same_alias)
    alias_is_other_id = write_entries(
        tmp_path / "b", make_entry("eczema"), make_entry("dyshidrotic-eczema", aliases=["eczema"])
    )
    with pytest.raises(KnowledgeError, match=r"dyshidrotic-eczema\.json.*id of another entry"):
        load_knowledge_base(alias_is_other_id)
    # Repeating one's own id as an alias is allowed (BRIEF.md's own example does it).
    assert len(load_knowledge_base(write_entries(tmp_path / "c", make_entry("acne", aliases=["acne"])))) == 1


# ------------------------------------------------------------------------------------------ resolution


@pytest.mark.parametrize(
    ("label", "dataset", "expected"),
    [
        ("fitzpatrick17k:acne vulgaris", None, "acne"),
        ("acne-vulgaris", "fitzpatrick17k", "acne"),
        ("acne vulgaris", "Fitzpatrick17k", "acne"),
        ("nv", "ham10000", "nevocytic-nevus"),
        ("NV", "HAM10000", "nevocytic-nevus"),
        ("NEV", "PAD-UFES-20", "nevocytic-nevus"),
        ("NEV", "pad_ufes_20", "nevocytic-nevus"),
        ("MEL", "isic 2019", "melanoma"),
        ("ham10000:mel", None, "melanoma"),
        ("dermnet:Acne and Rosacea Photos", None, "acne"),
        ("Acne and Rosacea Photos", "dermnet", "acne"),
        ("acne", None, "acne"),
        ("Pimples", None, "acne"),
        ("malignant_melanoma", None, "melanoma"),
        ("Melanocytic naevus (mole)", None, "nevocytic-nevus"),
        # A bare dataset label resolves when every dataset that uses it agrees.
        ("bcc", None, "basal-cell-carcinoma"),
        ("nev", None, "nevocytic-nevus"),
        # A dataset label that is not the dataset's falls back to ids and aliases.
        ("melanoma", "ham10000", "melanoma"),
        # An unknown dataset falls back to bare resolution.
        ("mel", "my-own-dataset", "melanoma"),
    ],
)
def test_resolve(small_kb: KnowledgeBase, label: str, dataset: str | None, expected: str) -> None:
    found = small_kb.resolve(label, dataset)
    assert found is not None and found.id == expected


@pytest.mark.parametrize(
    ("label", "dataset"),
    [
        ("shared", None),  # carried by two conditions of two datasets: ambiguous
        ("nv", "fitzpatrick17k"),  # a HAM10000 code is not a Fitzpatrick17k label
        ("psoriasis-vulgaris", None),
        ("", None),
        ("  :  ", None),
        ("fitzpatrick17k:", None),
    ],
)
def test_resolve_unknown_or_ambiguous_is_none(
    small_kb: KnowledgeBase, label: str, dataset: str | None
) -> None:
    assert small_kb.resolve(label, dataset) is None


def test_get_unknown_id_is_a_knowledge_error(small_kb: KnowledgeBase) -> None:
    assert small_kb.get("scabies").name == "Scabies"
    with pytest.raises(KnowledgeError, match="no-such"):
        small_kb.get("no-such")


def test_datasets_for(small_kb: KnowledgeBase) -> None:
    assert small_kb.datasets_for("melanoma") == ["fitzpatrick17k", "ham10000", "isic2019", "pad-ufes-20"]
    assert small_kb.datasets_for("acne") == ["dermnet", "fitzpatrick17k"]


def test_condition_link(small_kb: KnowledgeBase) -> None:
    assert condition_link("fitzpatrick17k:acne vulgaris", kb=small_kb) == "disease_library?condition=acne"
    assert condition_link("nv", "ham10000", kb=small_kb) == "disease_library?condition=nevocytic-nevus"
    assert condition_link("unknown-thing", kb=small_kb) is None


# ---------------------------------------------------------------------------------------------- search


def test_search_without_text_lists_everything_by_name(small_kb: KnowledgeBase) -> None:
    names = [c.name for c in small_kb.search("")]
    assert names == sorted(names, key=str.casefold)
    assert len(names) == len(small_kb) == 8


def test_search_ranks_name_matches_before_text_matches(small_kb: KnowledgeBase) -> None:
    # "melanoma" is the name of one entry and appears only in the summary of the mole entry.
    assert [c.id for c in small_kb.search("melanoma")] == ["melanoma", "nevocytic-nevus"]
    assert [c.id for c in small_kb.search("MOLE")] == ["nevocytic-nevus", "melanoma"]
    assert [c.id for c in small_kb.search("pimp")] == ["acne"]
    # Ranked, not all-words: the one entry with both words comes first, entries with only "itch" follow.
    itch_night = [c.id for c in small_kb.search("itch night")]
    assert itch_night[0] == "scabies" and "acne" not in itch_night
    assert small_kb.search("no such words here") == []


def test_search_filters(small_kb: KnowledgeBase) -> None:
    assert {c.id for c in small_kb.search(risk_group="malignant")} == {"melanoma", "basal-cell-carcinoma"}
    assert {c.id for c in small_kb.search(risk_group=["malignant", "benign"], urgency="soon")} == {
        "melanoma",
        "basal-cell-carcinoma",
    }
    assert {c.id for c in small_kb.search(contagious="yes")} == {"scabies", "tinea"}
    assert [c.id for c in small_kb.search("mole", risk_group="malignant")] == ["melanoma"]
    with pytest.raises(ValueError, match="risk group"):
        small_kb.search(risk_group="cancer")


# ------------------------------------------------------------------------------------ models_for


def install_fake_models(monkeypatch: pytest.MonkeyPatch, list_models: Any) -> None:
    module = types.ModuleType("dermlib.models")
    module.list_models = list_models  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dermlib.models", module)


def card(model_id: str, dataset: str, *class_ids: str) -> types.SimpleNamespace:
    classes = [types.SimpleNamespace(id=c, name=c.upper(), risk_group="benign") for c in class_ids]
    return types.SimpleNamespace(
        id=model_id, name=model_id.title(), classes=classes, training={"dataset": dataset}
    )


def test_models_for_matches_card_classes(monkeypatch: pytest.MonkeyPatch, small_kb: KnowledgeBase) -> None:
    ham = card("ham-model", "ham10000", "mel", "nv", "bcc")
    fitz = card("fitz-model", "fitzpatrick17k", "acne-vulgaris", "scabies")
    binary = card("binary", "dermoscopy-melanoma", "benign", "malignant")
    install_fake_models(monkeypatch, lambda: [ham, fitz, binary])
    assert models_for("melanoma", small_kb) == [ham]
    assert models_for("acne", small_kb) == [fitz]
    assert models_for("tinea", small_kb) == []


def test_models_for_without_models_is_empty(monkeypatch: pytest.MonkeyPatch, small_kb: KnowledgeBase) -> None:
    def broken() -> list[Any]:
        raise RuntimeError("weights folder unreadable")

    install_fake_models(monkeypatch, broken)
    assert models_for("melanoma", small_kb) == []
    monkeypatch.setitem(sys.modules, "dermlib.models", None)  # makes the import raise ImportError
    assert models_for("melanoma", small_kb) == []


def test_make_entry_is_valid_and_independent() -> None:
    # Guards the helper the rejection tests rely on: a rejection must come from the one change.
    entry = make_entry("acne")
    validate_entry(copy.deepcopy(entry), Path("acne.json"))
    entry["references"].pop()
    assert len(make_entry("acne")["references"]) == 2
