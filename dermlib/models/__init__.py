"""Model cards, the registry of installed models, and loading."""

from dermlib.models.card import (
    CARD_FILE,
    RISK_GROUPS,
    WEIGHTS_FILE,
    ClassInfo,
    ModelCard,
    load_card,
    save_card,
    validate_card_dict,
)
from dermlib.models.device import select_device
from dermlib.models.loading import LoadedModel, build_model, data_config, file_sha256, load_model
from dermlib.models.registry import BrokenModel, default_model_id, get_card, list_models, scan_models

__all__ = [
    "CARD_FILE",
    "RISK_GROUPS",
    "WEIGHTS_FILE",
    "BrokenModel",
    "ClassInfo",
    "LoadedModel",
    "ModelCard",
    "build_model",
    "data_config",
    "default_model_id",
    "file_sha256",
    "get_card",
    "list_models",
    "load_card",
    "load_model",
    "save_card",
    "scan_models",
    "select_device",
    "validate_card_dict",
]
