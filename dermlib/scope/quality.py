"""Photo quality: blur, exposure and size, measured, with thresholds chosen on real training photos.

A poor photo gets a warning with advice, never a refusal: the model may still answer well, and a clinician
may have no better photo. The thresholds live in the model card (``scope.quality``), chosen by
:func:`fit_quality_thresholds` so that only a small share of the model's own training photos would be flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from dermlib.images import rgb_for_reading

#: Measures are taken on the photo scaled to this shorter side, so that they do not depend on its resolution
#: (the training photos have a shorter side of about 256-320 px).
MEASURE_SHORT_SIDE = 256
#: Grey levels at or beyond which a pixel counts as clipped (no detail left).
DARK_LEVEL, BRIGHT_LEVEL = 8, 247


@dataclass(frozen=True)
class QualityWarning:
    """One quality problem of a photo.

    Attributes:
        code: ``blurry``, ``dark``, ``bright`` or ``small``.
        message: What is wrong, for a person.
        advice: What to do about it.
        value: The measured value.
        threshold: The limit it crossed.
    """

    code: str
    message: str
    advice: str
    value: float
    threshold: float

    def to_dict(self) -> dict:
        """JSON-ready form (``code``, ``message``, ``advice``, ``value``, ``threshold``)."""
        return {"code": self.code, "message": self.message, "advice": self.advice,
                "value": round(self.value, 4), "threshold": round(self.threshold, 4)}


def measure(image: Image.Image) -> dict[str, float]:
    """Quality measures of one RGB photo.

    Returns:
        ``sharpness`` (variance of the Laplacian of the grey image), ``dark_fraction`` and
        ``bright_fraction`` (share of clipped pixels), ``brightness`` (mean grey level, 0-255) and
        ``short_side`` (pixels, of the photo as given).
    """
    # Grey first, then resize: half the cost of resizing three channels (1.3 against 2.6 ms for a 640x480
    # photo), within one grey level of the other order.
    grey = cv2.cvtColor(np.asarray(rgb_for_reading(image)), cv2.COLOR_RGB2GRAY)
    short = min(grey.shape[:2])
    scale = MEASURE_SHORT_SIDE / short
    if abs(scale - 1) > 1e-3:
        size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return {
        "sharpness": float(cv2.Laplacian(grey, cv2.CV_64F).var()),
        "dark_fraction": float(np.mean(grey <= DARK_LEVEL)),
        "bright_fraction": float(np.mean(grey >= BRIGHT_LEVEL)),
        "brightness": float(grey.mean()),
        "short_side": float(short),
    }


def quality_warnings(measures: dict[str, float], thresholds: dict[str, float]) -> list[QualityWarning]:
    """The warnings a photo's measures raise under a card's thresholds (missing thresholds check nothing)."""
    out: list[QualityWarning] = []
    t = thresholds
    if "min_sharpness" in t and measures["sharpness"] < t["min_sharpness"]:
        out.append(QualityWarning("blurry", "The photo looks blurred.",
                                  "Hold the camera steady, tap the skin to focus, and try again.",
                                  measures["sharpness"], t["min_sharpness"]))
    too_dark = ("max_dark_fraction" in t and measures["dark_fraction"] > t["max_dark_fraction"]) or (
        "min_brightness" in t and measures["brightness"] < t["min_brightness"])
    if too_dark:
        out.append(QualityWarning("dark", "The photo is too dark: parts of it show no detail.",
                                  "Take it in more light (daylight near a window is best), without shadows.",
                                  measures["brightness"], t.get("min_brightness", 0.0)))
    too_bright = ("max_bright_fraction" in t and measures["bright_fraction"] > t["max_bright_fraction"]) or (
        "max_brightness" in t and measures["brightness"] > t["max_brightness"])
    if too_bright:
        out.append(QualityWarning("bright", "The photo is over-exposed: parts of it are washed out.",
                                  "Avoid direct flash or sunlight on the skin; use soft, even light.",
                                  measures["bright_fraction"], t.get("max_bright_fraction", 1.0)))
    if "min_short_side" in t and measures["short_side"] < t["min_short_side"]:
        out.append(QualityWarning("small", "The photo is very small, so fine detail is lost.",
                                  "Move closer to the skin, or upload the original photo rather than a thumbnail.",
                                  measures["short_side"], t["min_short_side"]))
    return out


def fit_quality_thresholds(measures: list[dict[str, float]], input_side: int,
                           tail: float = 0.003) -> dict[str, float]:
    """Thresholds that flag at most about ``tail`` of the given (training) photos per measure.

    Six limits at 0.3% each flag at most 1.8% of the photos together, inside the 2% the scope check
    allows itself; the rate actually flagged is measured and stored beside the thresholds.

    Args:
        measures: :func:`measure` of each training photo.
        input_side: The model's input side: a photo under half of it is flagged as small, unless more than
            ``tail`` of the training photos are that small themselves (then their ``tail`` quantile is the limit).
        tail: Share of photos each measure may flag.

    Returns:
        The thresholds for :func:`quality_warnings`.
    """
    arr = {k: np.array([m[k] for m in measures], dtype=np.float64) for k in measures[0]}

    # Limits are values of the sample itself, so a photo exactly at a limit passes and a small sample flags none.
    def low(key: str) -> float:
        return float(np.quantile(arr[key], tail, method="lower"))

    def high(key: str) -> float:
        return float(np.quantile(arr[key], 1 - tail, method="higher"))

    return {
        "min_sharpness": low("sharpness"),
        "min_brightness": low("brightness"),
        "max_brightness": high("brightness"),
        "max_dark_fraction": max(high("dark_fraction"), 0.05),
        "max_bright_fraction": max(high("bright_fraction"), 0.05),
        "min_short_side": float(min(input_side // 2, low("short_side"))),
    }
