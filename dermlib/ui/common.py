"""Cached model loading and the notices every page shows."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import streamlit as st
from PIL import Image

from dermlib.images import load_image
from dermlib.models import ModelCard
from dermlib.ui.session import session_memo

if TYPE_CHECKING:
    import numpy as np

    from dermlib.inference import Prediction
    from dermlib.models import LoadedModel

DISCLAIMER = (
    "**DermLens is decision support, not a diagnosis.** It can be wrong, it has only seen the conditions "
    "it was trained on, and it does not replace an examination by a clinician. If a spot is new, "
    "changing, bleeding or worrying you, see a doctor."
)

NO_MODEL_HELP = """
**No model is installed.** DermLens looks for models in the `weights/` folder (one folder per model
with `card.json` and `model.safetensors`, or the folder named by `DERMLENS_WEIGHTS_DIR`).

To get one: clone the repository with its shipped `weights/` folder, or train your own:

```
python -m dermlib train --dataset fitzpatrick17k --data-root PATH/TO/DATA --out weights/my-model
```
"""


def show_disclaimer() -> None:
    """The decision-support disclaimer, shown at the top of every page that shows model output."""
    st.info(DISCLAIMER, icon=":material/medical_information:")


def digest(data: bytes) -> str:
    """Content hash used as this session's memo key for an upload."""
    return hashlib.sha256(data).hexdigest()


def model_cache_key(card: ModelCard) -> str:
    """Changes when the weights file changes, so a replaced model is reloaded."""
    path = card.weights_path
    try:
        stat = path.stat()
        return f"{card.id}:{path}:{stat.st_mtime_ns}:{stat.st_size}"
    except OSError:
        return f"{card.id}:{path}:missing"


def load_model(card: ModelCard) -> LoadedModel:
    """:func:`dermlib.models.load_model`, imported on the first call.

    torch and timm take about 4 s to import; the Diagnose page draws its uploader first and only then asks
    for the model, so a new server's first page does not wait for them (docs/PERFORMANCE.md).
    """
    from dermlib.models.loading import load_model as load

    return load(card)


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def get_loaded_model(_card: ModelCard, cache_key: str) -> LoadedModel:
    """One loaded model per weights file, shared by every session (errors are not cached)."""
    return load_model(_card)


def decode_image(data: bytes, data_digest: str) -> Image.Image:
    """Decode an upload once per distinct content in this session (raises ImageError for bad files)."""
    return session_memo("image", data_digest, lambda: load_image(data))


def cached_prediction(loaded: LoadedModel, model_key: str, image_digest: str, image: Image.Image,
                      top_k: int) -> Prediction:
    """Prediction for one image, reused across this session's reruns (e.g. when only the opacity moves)."""
    from dermlib.inference import predict

    return session_memo("prediction", (model_key, image_digest, top_k), lambda: predict(loaded, image, top_k))


def cached_cams(loaded: LoadedModel, model_key: str, image_digest: str, image: Image.Image,
                class_indices: tuple[int, ...], method: str,
                progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Heatmaps for the given classes, reused across this session's reruns (opacity only changes the
    rendering). Falls back to the CPU if the GPU fails, like the prediction. ``progress`` is passed to
    the slow methods (see :func:`dermlib.explain.explain`); an interrupted computation is not memoised."""

    def compute() -> np.ndarray:
        from dermlib.explain.engine import cams_for_tensor  # grad-cam: imported when a map is first drawn

        return loaded.run_with_fallback(
            lambda: cams_for_tensor(loaded, loaded.preprocess([image]), list(class_indices), method,
                                    progress=progress))

    return session_memo("cams", (model_key, image_digest, class_indices, method), compute)
