"""Model cards: the one JSON file beside each weights file that describes the model.

A card is the single source of a model's classes (ids, display names, risk groups), preprocessing,
CAM target layer, calibration, training data and measured metrics. The training CLI writes it; the
app, the CLI and the tests read it; nothing else repeats it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dermlib.errors import CardError
from dermlib.masking import mask_problems

CARD_FILE = "card.json"
WEIGHTS_FILE = "model.safetensors"
CARD_SCHEMA_VERSION = 1

RISK_GROUPS = ("benign", "malignant", "non-neoplastic")
#: What a class's optional ``risk_label`` may say where the clinical literature and the dataset's group differ
#: (actinic keratosis is premalignant, filed as malignant); the risk sums keep the dataset's ``risk_group``.
RISK_LABELS = (*RISK_GROUPS, "premalignant")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
RESHAPES = (None, "vit", "swin")
#: The ``architecture`` value that marks an ensemble card (see :mod:`dermlib.models.ensemble`).
ENSEMBLE_ARCHITECTURE = "ensemble"
#: The ``task`` of a segmentation model's card (see :mod:`dermlib.segment`); every other task is a classifier.
SEGMENTATION_TASK = "segmentation"


@dataclass(frozen=True)
class ClassInfo:
    """One output class of a model.

    Attributes:
        id: Stable label id as the dataset names it (e.g. ``"basal-cell-carcinoma"``).
        name: Human-readable name.
        risk_group: ``"benign"``, ``"malignant"`` or ``"non-neoplastic"``: the dataset's group, which the risk
            sums and the risk-group metrics use.
        risk_label: The clinically right group where it differs (e.g. ``"premalignant"``); empty otherwise.
        risk_note: One or two sentences saying why, with the source.
    """

    id: str
    name: str
    risk_group: str
    risk_label: str = ""
    risk_note: str = ""

    @property
    def display_risk(self) -> str:
        """The group shown to people: the clinical label where there is one, else the dataset's group."""
        return self.risk_label or self.risk_group


@dataclass(frozen=True)
class ModelCard:
    """A validated model card (see the module docstring); ``raw`` keeps the full JSON."""

    id: str
    name: str
    architecture: str
    task: str
    classes: tuple[ClassInfo, ...]
    preprocessing: dict[str, Any]
    cam: dict[str, Any]
    calibration: dict[str, Any]
    inference: dict[str, Any]
    training: dict[str, Any]
    metrics: dict[str, Any]
    limitations: tuple[str, ...]
    weights: dict[str, Any]
    model_kwargs: dict[str, Any]
    members: tuple[dict[str, Any], ...] = ()
    description: str = ""
    default: bool = False
    path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def class_ids(self) -> list[str]:
        """Class ids in output order."""
        return [c.id for c in self.classes]

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return len(self.classes)

    @property
    def is_segmentation(self) -> bool:
        """Whether the card describes a lesion segmentation model (see :mod:`dermlib.segment`)."""
        return self.task == SEGMENTATION_TASK

    @property
    def segmentation(self) -> dict[str, Any]:
        """The ``segmentation`` section of a segmentation card (threshold, encoder); empty for a classifier."""
        return dict(self.raw.get("segmentation") or {})

    @property
    def is_ensemble(self) -> bool:
        """Whether the card describes an ensemble (see :mod:`dermlib.models.ensemble`)."""
        return self.architecture == ENSEMBLE_ARCHITECTURE

    @property
    def cam_layers(self) -> list[str]:
        """The CAM target layers (dotted names): one for a single network, one per member for an ensemble."""
        layers = self.cam["target_layer"]
        return [layers] if isinstance(layers, str) else [str(x) for x in layers]

    @property
    def architecture_label(self) -> str:
        """The architecture as people read it.

        E.g. ``ensemble of tf_efficientnet_lite2 + tf_efficientnet_lite1``; where an architecture repeats,
        members are counted and their input sizes given so they can be told apart:
        ``ensemble of 3 x tf_efficientnet_lite0 (288, 224, 224 px)`` or
        ``ensemble of 2 x tf_efficientnet_lite0 (288, 224 px) + tf_efficientnet_lite2 (260 px)``.
        """
        if self.is_segmentation:
            return f"{self.architecture} on {self.segmentation.get('encoder', '?').removeprefix('tu-')}"
        if not self.is_ensemble:
            return self.architecture
        groups: dict[str, list[str]] = {}
        for m in self.members:
            size = m.get("input_size") or self.preprocessing["input_size"]
            groups.setdefault(str(m["architecture"]), []).append(str(size[-1]))
        if all(len(sizes) == 1 for sizes in groups.values()):
            return "ensemble of " + " + ".join(groups)
        parts = [f"{len(sizes)} x {arch} ({', '.join(sizes)} px)" if len(sizes) > 1 else f"{arch} ({sizes[0]} px)"
                 for arch, sizes in groups.items()]
        return "ensemble of " + " + ".join(parts)

    @property
    def diagnose_withheld(self) -> str | None:
        """Why the Diagnose page does not offer this model (card field ``diagnose.offered: false``), else None.

        A benchmark model too heavy for a shared demo server (the six-network ensemble) stays installed for the
        Model page, the CLI and the benchmarks, but is kept out of the Diagnose picker; ``DERMLENS_OFFER_ALL_MODELS=1``
        offers it anyway (see :func:`dermlib.ui.model_summary.diagnose_models`).
        """
        section = self.raw.get("diagnose") or {}
        if section.get("offered", True):
            return None
        return str(section.get("reason") or "not offered on the Diagnose page")

    @property
    def temperature(self) -> float:
        """Calibration temperature (1.0 when the model was never calibrated)."""
        return float(self.calibration.get("temperature", 1.0))

    @property
    def weights_path(self) -> Path:
        """Path of the safetensors file this card describes."""
        if self.path is None:
            raise CardError(f"Model card '{self.id}' was not loaded from a folder.")
        return self.path / str(self.weights.get("file", WEIGHTS_FILE))

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> ModelCard:
        """Validate a card dict and build a :class:`ModelCard`.

        Args:
            data: The parsed JSON.
            path: The folder the card came from, if any.

        Raises:
            CardError: A required field is missing or has an invalid value.
        """
        where = f"model card {path / CARD_FILE}" if path else "model card"
        problems = validate_card_dict(data)
        if problems:
            raise CardError(f"The {where} is invalid: " + "; ".join(problems) + ".")
        classes = tuple(ClassInfo(str(c["id"]), str(c["name"]), str(c["risk_group"]), str(c.get("risk_label", "")),
                                  str(c.get("risk_note", ""))) for c in data.get("classes") or ())
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            architecture=str(data["architecture"]),
            task=str(data.get("task", "")),
            classes=classes,
            preprocessing=dict(data["preprocessing"]),
            cam=dict(data.get("cam") or {}),
            calibration=dict(data.get("calibration") or {}),
            inference=dict(data.get("inference") or {}),
            training=dict(data.get("training") or {}),
            metrics=dict(data.get("metrics") or {}),
            limitations=tuple(str(x) for x in data.get("limitations") or ()),
            weights=dict(data.get("weights") or {"file": WEIGHTS_FILE}),
            model_kwargs=dict(data.get("model_kwargs") or {}),
            members=tuple(dict(m) for m in data.get("members") or ()),
            description=str(data.get("description", "")),
            default=bool(data.get("default", False)),
            path=path,
            raw=data,
        )


def validate_card_dict(data: Any) -> list[str]:
    """Return the list of schema problems of a card dict (empty when valid)."""
    if not isinstance(data, dict):
        return ["the card must be a JSON object"]
    problems: list[str] = []
    segmentation = data.get("task") == SEGMENTATION_TASK
    required = ("id", "name", "architecture", "preprocessing", "segmentation") if segmentation else (
        "id", "name", "architecture", "classes", "preprocessing", "cam")
    for key in required:
        if key not in data:
            problems.append(f"missing field '{key}'")
    if problems:
        return problems
    for key in ("id", "name", "architecture"):
        if not isinstance(data[key], str) or not data[key].strip():
            problems.append(f"'{key}' must be a non-empty string")
    problems.extend(_preprocessing_problems(data["preprocessing"]))
    if segmentation:
        return problems + _segmentation_problems(data["segmentation"])

    classes = data["classes"]
    if not isinstance(classes, list) or not classes:
        problems.append("'classes' must be a non-empty list")
    else:
        seen: set[str] = set()
        for i, c in enumerate(classes):
            if not isinstance(c, dict) or not {"id", "name", "risk_group"} <= set(c):
                problems.append(f"classes[{i}] needs 'id', 'name' and 'risk_group'")
                continue
            if c["risk_group"] not in RISK_GROUPS:
                problems.append(f"classes[{i}].risk_group must be one of {', '.join(RISK_GROUPS)}")
            if c.get("risk_label") and c["risk_label"] not in RISK_LABELS:
                problems.append(f"classes[{i}].risk_label must be one of {', '.join(RISK_LABELS)}")
            if c.get("risk_label") and not str(c.get("risk_note", "")).strip():
                problems.append(f"classes[{i}] has a risk_label but no risk_note saying why")
            if c["id"] in seen:
                problems.append(f"class id '{c['id']}' appears twice")
            seen.add(c["id"])

    if data["architecture"] == ENSEMBLE_ARCHITECTURE:
        problems.extend(_member_problems(data.get("members")))

    cam = data["cam"]
    layers = cam.get("target_layer") if isinstance(cam, dict) else None
    named = (isinstance(layers, str) and layers) or (
        isinstance(layers, list) and layers and all(isinstance(x, str) and x for x in layers))
    if not named:
        problems.append("cam.target_layer must name a layer (dotted path) or list one layer per ensemble member")
    elif cam.get("reshape") not in RESHAPES:
        problems.append("cam.reshape must be null, 'vit' or 'swin'")

    cal = data.get("calibration") or {}
    if not isinstance(cal, dict):
        problems.append("'calibration' must be an object")
    else:
        temp = cal.get("temperature", 1.0)
        if not (_finite(temp) and temp > 0):
            problems.append("calibration.temperature must be a positive number")
        for key in ("min_top1_probability", "max_normalized_entropy"):
            if key in cal and not (_finite(cal[key]) and 0 <= cal[key] <= 1):
                problems.append(f"calibration.{key} must be between 0 and 1")
    if data.get("scope") is not None:
        problems.extend(_scope_problems(data["scope"]))
    if data.get("diagnose") is not None:
        problems.extend(_diagnose_problems(data["diagnose"]))
    return problems


def _preprocessing_problems(pre: Any) -> list[str]:
    """Schema problems of a card's ``preprocessing`` section (classifiers and segmenters alike)."""
    if not isinstance(pre, dict):
        return ["'preprocessing' must be an object"]
    problems: list[str] = []
    if not _is_input_size(pre.get("input_size")):
        problems.append("preprocessing.input_size must be [channels, height, width]")
    for key in ("mean", "std"):
        val = pre.get(key)
        if not (isinstance(val, list) and len(val) == 3 and all(_finite(v) for v in val)):
            problems.append(f"preprocessing.{key} must be three numbers")
    if isinstance(pre.get("std"), list) and any(_finite(v) and v <= 0 for v in pre["std"]):
        problems.append("preprocessing.std must be positive")
    if pre.get("interpolation") not in INTERPOLATIONS:
        problems.append(f"preprocessing.interpolation must be one of {', '.join(INTERPOLATIONS)}")
    crop = pre.get("crop_pct", 1.0)
    if not (_finite(crop) and 0 < crop <= 1):
        problems.append("preprocessing.crop_pct must be in (0, 1]")
    if pre.get("mask") is not None:
        problems.extend(mask_problems(pre["mask"]))
    return problems


def _segmentation_problems(seg: Any) -> list[str]:
    """Schema problems of a segmentation card's ``segmentation`` section."""
    if not isinstance(seg, dict):
        return ["'segmentation' must be an object"]
    problems = []
    if not (isinstance(seg.get("encoder"), str) and seg["encoder"]):
        problems.append("segmentation.encoder must name the encoder (e.g. tu-tf_efficientnet_lite0)")
    threshold = seg.get("threshold")
    if not (_finite(threshold) and 0 < threshold < 1):
        problems.append("segmentation.threshold must be between 0 and 1")
    return problems


def _scope_problems(scope: Any) -> list[str]:
    """Schema problems of a card's ``scope`` section (the out-of-scope check, :mod:`dermlib.scope`)."""
    if not isinstance(scope, dict):
        return ["'scope' must be an object"]
    problems = []
    if not isinstance(scope.get("score"), str) or not scope["score"]:
        problems.append("scope.score must name an out-of-distribution score")
    if not _finite(scope.get("threshold")):
        problems.append("scope.threshold must be a number")
    if not isinstance(scope.get("sha256"), str) or len(scope["sha256"]) != 64:
        problems.append("scope.sha256 must be the SHA-256 of the scope statistics file")
    other = (scope.get("modality") or {}).get("max_other_probability") if isinstance(scope.get("modality"), dict) \
        else None
    if not (_finite(other) and 0 <= other <= 1):
        problems.append("scope.modality.max_other_probability must be between 0 and 1")
    return problems


def _diagnose_problems(section: Any) -> list[str]:
    """Schema problems of a card's ``diagnose`` section (whether the Diagnose page offers the model, and why not)."""
    if not isinstance(section, dict) or not isinstance(section.get("offered", True), bool):
        return ["'diagnose' must be an object whose 'offered' is true or false"]
    if not section.get("offered", True) and not (isinstance(section.get("reason"), str) and section["reason"]):
        return ["diagnose.reason must say why a model is not offered on the Diagnose page"]
    return []


def load_card(folder: str | Path) -> ModelCard:
    """Read and validate ``card.json`` in ``folder``.

    Raises:
        CardError: The card is missing, not JSON, or fails its schema.
    """
    folder = Path(folder)
    path = folder / CARD_FILE
    if not path.is_file():
        raise CardError(f"No model card at {path}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CardError(f"The model card {path} is not valid JSON ({exc}).") from exc
    return ModelCard.from_dict(data, path=folder)


def save_card(data: dict[str, Any], folder: str | Path) -> Path:
    """Validate and write a card dict as ``folder/card.json``; returns the path.

    Raises:
        CardError: The dict fails the schema (nothing is written then).
    """
    ModelCard.from_dict(data)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CARD_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def _is_input_size(value: Any) -> bool:
    """[channels, height, width] as positive integers."""
    return isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) and v > 0 for v in value)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _member_problems(raw: Any) -> list[str]:
    """Schema problems of a card's ``members`` list (empty when valid)."""
    if not isinstance(raw, list) or not raw:
        return ["an ensemble card needs a non-empty 'members' list"]
    problems: list[str] = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or not isinstance(m.get("architecture"), str) or not m["architecture"]:
            problems.append(f"members[{i}] needs an 'architecture'")
            continue
        if m["architecture"] == ENSEMBLE_ARCHITECTURE:
            problems.append(f"members[{i}] cannot itself be an ensemble")
        if m.get("input_size") is not None and not _is_input_size(m["input_size"]):
            problems.append(f"members[{i}].input_size must be [channels, height, width]")
        for key in ("mean", "std"):
            val = m.get(key)
            if val is not None and not (isinstance(val, list) and len(val) == 3 and all(_finite(v) for v in val)
                                        and (key == "mean" or all(v > 0 for v in val))):
                problems.append(f"members[{i}].{key} must be three numbers (std positive)")
        weight = m.get("weight", 1.0)
        if not (isinstance(weight, int | float) and not isinstance(weight, bool) and weight >= 0):
            problems.append(f"members[{i}].weight must be a non-negative number")
        if not isinstance(m.get("model_kwargs", {}), dict):
            problems.append(f"members[{i}].model_kwargs must be an object")
    return problems
