"""DermLens library: everything the app and the CLI compute.

The small public API::

    from dermlib import load_image, load_model, predict, explain, overlay_heatmap
    model = load_model("clinical-fitz21")            # or list_models() / default_model_id()
    image = load_image(uploaded_bytes)                # ImageError with a readable message on bad input
    prediction = predict(model, image, top_k=3)       # calibrated top-k, risk groups, abstention
    maps = explain(model, image, [model.card.class_ids.index(s.label) for s in prediction.top_k])
"""

from dermlib.errors import CardError, DatasetError, DermLensError, ImageError, KnowledgeError, ModelError
from dermlib.explain import CAM_METHODS, explain, overlay_heatmap
from dermlib.images import load_image
from dermlib.inference import Prediction, predict, predict_batch
from dermlib.models import LoadedModel, ModelCard, default_model_id, get_card, list_models, load_model

__version__ = "0.1.0"

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
