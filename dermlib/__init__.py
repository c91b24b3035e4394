"""DermLens library: everything the app and the CLI compute.

The small public API::

    from dermlib import load_image, load_model, predict, explain, overlay_heatmap
    model = load_model("clinical-fitz21")            # or list_models() / default_model_id()
    image = load_image(uploaded_bytes)                # ImageError with a readable message on bad input
    prediction = predict(model, image, top_k=3)       # calibrated top-k, risk groups, abstention
    maps = explain(model, image, [model.card.class_ids.index(s.label) for s in prediction.top_k])

Names are imported on first use (PEP 562): ``python -m dermlib models`` must not pay for torch, timm
and grad-cam (seconds) just to list model cards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dermlib._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "CardError": "dermlib.errors",
    "DatasetError": "dermlib.errors",
    "DermLensError": "dermlib.errors",
    "ImageError": "dermlib.errors",
    "KnowledgeError": "dermlib.errors",
    "ModelError": "dermlib.errors",
    "CAM_METHODS": "dermlib.explain.methods",
    "explain": "dermlib.explain.engine",
    "overlay_heatmap": "dermlib.explain.overlay",
    "load_image": "dermlib.images",
    "Prediction": "dermlib.inference",
    "predict": "dermlib.inference",
    "predict_batch": "dermlib.inference",
    "LoadedModel": "dermlib.models.loading",
    "load_model": "dermlib.models.loading",
    "ModelCard": "dermlib.models.card",
    "default_model_id": "dermlib.models.registry",
    "get_card": "dermlib.models.registry",
    "list_models": "dermlib.models.registry",
}

__all__ = [
    "CAM_METHODS",
    "CardError",
    "DatasetError",
    "DermLensError",
    "ImageError",
    "KnowledgeError",
    "LoadedModel",
    "ModelCard",
    "ModelError",
    "Prediction",
    "__version__",
    "default_model_id",
    "explain",
    "get_card",
    "list_models",
    "load_image",
    "load_model",
    "overlay_heatmap",
    "predict",
    "predict_batch",
]

if TYPE_CHECKING:
    from dermlib.errors import CardError, DatasetError, DermLensError, ImageError, KnowledgeError, ModelError
    from dermlib.explain import CAM_METHODS, explain, overlay_heatmap
    from dermlib.images import load_image
    from dermlib.inference import Prediction, predict, predict_batch
    from dermlib.models import LoadedModel, ModelCard, default_model_id, get_card, list_models, load_model


__getattr__ = lazy_exports("dermlib", _EXPORTS, globals())
