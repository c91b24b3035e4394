"""Model cards, the registry of installed models, and loading.

Names are imported on first use (PEP 562): reading cards needs only json, loading a model needs torch
and timm, and the command line lists models without paying for the second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dermlib._lazy import lazy_exports

_EXPORTS = {
    **{name: "dermlib.models.card" for name in (
        "CARD_FILE", "RISK_GROUPS", "WEIGHTS_FILE", "ClassInfo", "ModelCard", "load_card", "save_card",
        "validate_card_dict")},
    "select_device": "dermlib.models.device",
    **{name: "dermlib.models.loading" for name in (
        "LoadedModel", "build_model", "data_config", "load_model")},
    "file_sha256": "dermlib.models.verify",
    **{name: "dermlib.models.registry" for name in (
        "BrokenModel", "default_model_id", "get_card", "list_models", "scan_models")},
}

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

if TYPE_CHECKING:
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
    from dermlib.models.loading import LoadedModel, build_model, data_config, load_model
    from dermlib.models.registry import BrokenModel, default_model_id, get_card, list_models, scan_models
    from dermlib.models.verify import file_sha256


__getattr__ = lazy_exports("dermlib.models", _EXPORTS, globals())
