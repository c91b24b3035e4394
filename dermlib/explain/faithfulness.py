"""Can a heatmap be trusted? The probability drop when its most highlighted pixels are removed.

A faithful map points at the pixels the model really uses: removing them should lower the class's probability
far more than removing as many pixels at random. DermLens measures this in the spirit of ROAD (Rong et al.,
"A Consistent and Efficient Evaluation Strategy for Attribution Methods", ICML 2022): removed pixels are filled
from their surroundings, so the model never sees a black hole whose shape alone would move its answer. ROAD's
own imputer (grad-cam's ``NoisyLinearImputer``, a sparse linear solve per channel) took 0.3-0.5 s per image on
2 CPU cores; OpenCV's Telea inpainting fills the same pixels from their neighbours in a few milliseconds.

For every class of the top-k the score is::

    drop(most highlighted 20%) - drop(random 20%)        (in probability points, calibrated)

The random mask is drawn in blocks the size of the map's own cells (a CAM is a coarse grid upsampled), so it
removes regions as contiguous as the map's; one random mask serves every class of an image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Share of the pixels removed: grad-cam's ROADMostRelevantFirst default (its percentile 80).
REMOVED_FRACTION = 0.2
#: Side of a random block, in model-input pixels (EfficientNet's last feature map is 1/32 of the input).
RANDOM_BLOCK = 32
#: Below this margin over the random baseline a map is called "no better than chance" (probability points).
CHANCE_MARGIN = 0.02


def verdict(score: float) -> str:
    """One word for a faithfulness score (:attr:`Faithfulness.score`): the page and the report both use it."""
    if score >= CHANCE_MARGIN:
        return "faithful"
    return "no better than chance" if score > -CHANCE_MARGIN else "worse than chance"


def signed_points(score: float) -> str:
    """A probability difference in whole percentage points with its sign, ``+5`` or ``-3``; ``0``, never ``-0``."""
    points = round(score * 100)
    return f"{points:+d}" if points else "0"


@dataclass(frozen=True)
class Faithfulness:
    """The probability drop of one class when pixels are removed.

    Attributes:
        probability: The class's calibrated probability on the intact image.
        after_top: Its probability with the map's most highlighted pixels removed.
        after_random: Its probability with as many random pixels (in blocks) removed.
    """

    probability: float
    after_top: float
    after_random: float

    @property
    def score(self) -> float:
        """Drop when the highlighted pixels go minus the drop when random ones go (positive = faithful)."""
        return (self.probability - self.after_top) - (self.probability - self.after_random)

    @property
    def verdict(self) -> str:
        """One word a reader can act on (:func:`verdict`)."""
        return verdict(self.score)

    def sentence(self, name: str) -> str:
        """The measurement in words, e.g. for a caption."""
        return (f"Removing the {REMOVED_FRACTION:.0%} most highlighted pixels takes {name} from "
                f"{self.probability:.0%} to {self.after_top:.0%}; removing {REMOVED_FRACTION:.0%} at random, to "
                f"{self.after_random:.0%}. Score {signed_points(self.score)} points: {self.verdict}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {"probability": round(self.probability, 4), "after_top": round(self.after_top, 4),
                "after_random": round(self.after_random, 4), "score": round(self.score, 4),
                "verdict": self.verdict}


def random_block_mask(shape: tuple[int, int], fraction: float = REMOVED_FRACTION, block: int = RANDOM_BLOCK,
                      seed: int = 0) -> np.ndarray:
    """A bool mask (True = remove) of about ``fraction`` of the pixels, in square blocks, reproducible by seed."""
    h, w = shape
    rng = np.random.default_rng(seed)
    gh, gw = -(-h // block), -(-w // block)
    scores = rng.random((gh, gw))
    cells = np.kron(scores, np.ones((block, block)))[:h, :w]
    # Pixel-exact share: rank the cell scores plus a tiny jitter so ties at the cut split within a cell.
    jittered = cells + rng.random((h, w)) * 1e-6
    return jittered >= np.quantile(jittered, 1.0 - fraction)


def top_mask(cam: np.ndarray, shape: tuple[int, int], fraction: float = REMOVED_FRACTION) -> np.ndarray:
    """The ``fraction`` of pixels with the highest map values (the map resized to ``shape`` first)."""
    import cv2

    cam = np.asarray(cam, dtype=np.float32)
    if cam.shape != tuple(shape):
        cam = cv2.resize(cam, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    jittered = cam + np.random.default_rng(0).random(cam.shape).astype(np.float32) * 1e-6  # flat maps: ties
    return jittered >= np.quantile(jittered, 1.0 - fraction)


def impute(view: np.ndarray, remove: np.ndarray) -> np.ndarray:
    """The RGB uint8 ``view`` with the ``remove`` pixels inpainted from their surroundings (Telea)."""
    import cv2

    return cv2.inpaint(np.ascontiguousarray(view), remove.astype(np.uint8), 3, cv2.INPAINT_TELEA)


def faithfulness(loaded: Any, image: Any, class_indices: list[int], maps: np.ndarray,
                 fraction: float = REMOVED_FRACTION, seed: int = 0) -> list[Faithfulness]:
    """Measure each map's faithfulness (see the module docstring) with one batched forward pass.

    Args:
        loaded: The :class:`~dermlib.models.LoadedModel` that drew the maps.
        image: The photo (PIL).
        class_indices: The classes the maps belong to.
        maps: (k, h, w) maps in [0, 1], one per class (a class-agnostic method's map repeated is fine).
        fraction: Share of the pixels removed.
        seed: Seed of the random baseline.

    Returns:
        One :class:`Faithfulness` per class, in order.
    """
    import torch
    from PIL import Image

    from dermlib.models import fast
    from dermlib.runtime.memory import release_freed_memory

    view = np.asarray(loaded.model_view(image).convert("RGB"))
    shape = view.shape[:2]
    views = [view, impute(view, random_block_mask(shape, fraction, seed=seed))]
    views += [impute(view, top_mask(cam, shape, fraction)) for cam in maps]
    batch = torch.stack([loaded.normalize(Image.fromarray(v)) for v in views])

    def probabilities() -> np.ndarray:
        # In chunks the prediction's fast path takes (ONNX Runtime on a CPU): one batch of 2 + k views
        # through a six-network ensemble in eager torch held about 250 MB more at the peak.
        with torch.inference_mode():
            logits = torch.cat([loaded.logits(loaded._to_device(batch[i:i + fast.MAX_BATCH])).float().cpu()
                                for i in range(0, len(batch), fast.MAX_BATCH)])
        return torch.softmax(logits / loaded.card.temperature, dim=1).numpy()

    probs = loaded.run_with_fallback(probabilities)
    release_freed_memory()
    return [Faithfulness(float(probs[0, c]), float(probs[2 + i, c]), float(probs[1, c]))
            for i, c in enumerate(class_indices)]
