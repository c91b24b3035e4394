"""The registry of CAM methods by name, on top of the grad-cam package.

Each entry names a grad-cam class whose weighting (``get_cam_weights`` / ``get_cam_image``) DermLens
reuses; the forward and backward passes are DermLens's own (see :mod:`dermlib.explain.engine`) so that
a model shared by many sessions never carries another session's hooks. The app's method picker and the
CLI's ``--cam`` choices both read :data:`CAM_METHODS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry itself stays import-light: the CLI lists it without loading torch or grad-cam
    import numpy as np
    import torch
    from pytorch_grad_cam.base_cam import BaseCAM

    from dermlib.models.card import ModelCard


@dataclass(frozen=True)
class CamMethod:
    """One explanation method.

    Attributes:
        name: Registry key (CLI and URL friendly).
        label: Name shown in the app.
        cam_class_name: Name of the grad-cam class that supplies the weighting (imported on first use).
        uses_gradients: Needs a backward pass (class-specific maps).
        class_specific: False when the map is the same for every class (EigenCAM).
        slow: Needs one forward pass per feature channel (hundreds), seconds on a CPU.
        description: One sentence for the app.
    """

    name: str
    label: str
    cam_class_name: str
    uses_gradients: bool
    class_specific: bool
    slow: bool
    description: str

    @property
    def reading_note(self) -> str:
        """How to read this method's colours, for the page and the PDF report.

        A class-agnostic map (EigenCAM) shows where the network's strongest activation pattern lies, whatever
        the answer: saying its warm colours "raised the score" of a class would claim what it cannot show.
        """
        if self.class_specific:
            return ("Warm colours mark the regions that raised the score of each class. A heatmap on healthy skin, "
                    "a ruler or the background is a reason to distrust the prediction.")
        return (f"Warm colours mark where the network's strongest activation pattern lies. {self.label} is not "
                "tied to any class: it shows what drew the network's attention, not which region raised a given "
                "diagnosis. Attention on healthy skin, a ruler or the background is still a reason for doubt.")

    @property
    def colour_scale(self) -> str:
        """The colour bar's caption."""
        if self.class_specific:
            return "Colour scale: blue = no evidence, red = the strongest evidence in this image"
        return "Colour scale: blue = least, red = most of the network's activation pattern in this image"

    @property
    def cam_class(self) -> type[BaseCAM]:
        """The grad-cam class (importing grad-cam costs seconds, so only a caller that computes maps pays)."""
        return getattr(importlib.import_module("pytorch_grad_cam"), self.cam_class_name)

    def weighting(self) -> BaseCAM:
        """A grad-cam object used only for its weighting maths.

        It is built on a private throw-away layer and its hooks are released at once, so the shared
        model is never touched.
        """
        import torch

        dummy = torch.nn.Linear(1, 1)
        obj = self.cam_class(model=dummy, target_layers=[dummy])
        obj.activations_and_grads.release()
        return obj


_METHODS = (
    CamMethod("gradcam", "Grad-CAM", "GradCAM", True, True, False,
              "Channel weights are the spatially averaged gradients of the class score (Selvaraju et al., 2017)."),
    CamMethod("gradcam++", "Grad-CAM++", "GradCAMPlusPlus", True, True, False,
              "Weights positive gradients with higher-order terms; better for several lesions in one image."),
    CamMethod("hirescam", "HiResCAM", "HiResCAM", True, True, False,
              "Multiplies activations by gradients element-wise; provably faithful to the class score."),
    CamMethod("xgradcam", "XGrad-CAM", "XGradCAM", True, True, False,
              "Gradient weights normalised by the activations (axiom-based Grad-CAM)."),
    CamMethod("layercam", "LayerCAM", "LayerCAM", True, True, False,
              "Positive gradients weight each location separately: finer, more local maps."),
    CamMethod("eigengradcam", "Eigen-Grad-CAM", "EigenGradCAM", True, True, False,
              "First principal component of gradient x activation: class-specific and less noisy."),
    CamMethod("eigencam", "EigenCAM", "EigenCAM", False, False, False,
              "First principal component of the activations: shows what the network attends to, for any class."),
    CamMethod("scorecam", "Score-CAM", "ScoreCAM", False, True, True,
              "Weights each channel by the class score of the image masked with it: no gradients, slow."),
)

CAM_METHODS: dict[str, CamMethod] = {m.name: m for m in _METHODS}
DEFAULT_CAM_METHOD = "gradcam"


SLOW_METHOD_MAX_SIDE = 224
"""Largest input side (one network) at which a slow method stays within the app's 3 s budget on two CPU
cores; ``benchmarks/bench_predict.py --methods scorecam`` measures it (figures in the README)."""


def unavailable_reason(card: ModelCard, name: str) -> str | None:
    """Why the app does not offer this method for this model, or None when it does.

    A slow method (Score-CAM: one masked forward pass per scored channel, :data:`SCORE_CAM_MAX_CHANNELS`
    for one network, shared by the layers of an ensemble, :func:`score_cam_channels`) is offered only for a model
    of at most :data:`SCORE_CAM_MAX_MEMBERS` networks whose inputs are at most :data:`SLOW_METHOD_MAX_SIDE`
    pixels: on a larger ensemble or input it would take many seconds and hold up the session.

    Args:
        card: The model's card.
        name: A key of :data:`CAM_METHODS`.
    """
    spec = get_cam_method(name)
    if not spec.slow:
        return None
    sizes = [card.preprocessing["input_size"], *(m.get("input_size") or [0, 0, 0] for m in card.members)]
    side = max(int(v) for size in sizes for v in list(size)[1:])
    if card.is_ensemble and len(card.members) > SCORE_CAM_MAX_MEMBERS:
        return (f"{spec.label} is not offered for this model: even with few channels per network it needs "
                f"masked passes through each of its {len(card.members)} networks, far over the app's 3-second "
                "budget for a heatmap on a small server. Gradient methods give their maps at once.")
    if side > SLOW_METHOD_MAX_SIDE:
        return (f"{spec.label} is not offered for this model: {SCORE_CAM_MAX_CHANNELS} masked passes at "
                f"{side} px take longer than the app's 3-second budget for a heatmap on a small server.")
    return None


def get_cam_method(name: str) -> CamMethod:
    """Look up a method by registry name (case-insensitive).

    Raises:
        ValueError: Unknown method; the message lists the known ones.
    """
    key = name.lower().strip()
    if key not in CAM_METHODS:
        raise ValueError(f"Unknown CAM method '{name}'. Choose one of: {', '.join(CAM_METHODS)}.")
    return CAM_METHODS[key]


SCORE_CAM_MAX_CHANNELS = 128
"""Channels Score-CAM scores for a single network (the most activated first; the rest get weight 0); an
ensemble shares this budget of passes (:func:`score_cam_channels`).

Each scored channel costs one forward pass of a masked copy of the photo: Lite0's 1280 channels at 224 px
took 139 s on two cores, 256 took about 8 s with a training run beside it. The 128 most activated carry
most of the map (the channel selection of the fast Score-CAM variants, e.g. Wang et al.'s Faster
Score-CAM) and fit the app's time budget.
"""


SCORE_CAM_MAX_MEMBERS = 3
"""Largest ensemble for which Score-CAM is offered: its budget of passes is shared (:func:`score_cam_channels`).

Three networks score 14 channels at each of their layers: on 16 test photos of the three-network
``clinical-common38`` top-3 took 2.20 s p50 (3.80 s at most), and the top-1 maps agreed with those of four
times the passes at Pearson r 0.978 (median; 0.902 at least), with the same faithfulness score
(``benchmarks/bench_scorecam_budget.py``). Four would share 8 channels a layer, not measured yet."""


def score_cam_channels(n_members: int) -> int | None:
    """Channels Score-CAM scores at each target layer of a model with ``n_members`` networks (1: one network).

    Every masked image of an ensemble goes through all of its networks, and each network has its own target
    layer, so scoring ``c`` channels per layer costs ``c * n_members**2`` network passes. To keep an ensemble
    within the single network's budget of :data:`SCORE_CAM_MAX_CHANNELS` passes, each layer scores
    ``SCORE_CAM_MAX_CHANNELS // n_members**2`` (32 for a pair, 14 for three networks), still against the
    ensemble's own class score.
    None (every channel) when :data:`SCORE_CAM_MAX_CHANNELS` is None. A single network's card lists no
    members, so 0 counts as 1.
    """
    if SCORE_CAM_MAX_CHANNELS is None:
        return None
    return max(1, SCORE_CAM_MAX_CHANNELS // max(1, n_members) ** 2)


def score_cam_weights(
    model: torch.nn.Module,
    input_tensor: torch.Tensor,
    activations: np.ndarray,
    class_indices: list[int],
    batch_size: int = 8,
    max_channels: int | None = SCORE_CAM_MAX_CHANNELS,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Score-CAM channel weights for several classes from one set of masked forward passes.

    grad-cam's ScoreCAM runs every masked image once per target class and materialises all masked
    images at once (hundreds of full-size copies); scoring each masked batch for all requested classes
    gives the same weights with 1/K of the passes and bounded memory. With ``max_channels`` only the most
    activated channels (largest mean activation) are scored; the softmax runs over those and every other
    channel's weight is 0.

    Args:
        model: The network (called under ``torch.no_grad``).
        input_tensor: The preprocessed image, shape (1, 3, H, W).
        activations: Target-layer activations, shape (1, C, h, w).
        class_indices: Classes to weight for.
        batch_size: Masked images per forward pass (8: batches of 32 held 450 MB more at the peak on Lite0
            at 224 px, for no speed-up on two cores).
        max_channels: Score at most this many channels (None: all, exactly grad-cam's Score-CAM).
        progress: Called as ``progress(done, total)`` after each batch of masked images. A caller can
            stop the computation by raising from it (the app does, when the user changes the input).

    Returns:
        Weights of shape (K, C): a softmax over the scored channels of each class's score.
    """
    import torch

    acts = torch.from_numpy(activations[:1]).to(input_tensor.device, torch.float32)
    n_channels = acts.shape[1]
    chosen = torch.arange(n_channels, device=acts.device)
    if max_channels is not None and n_channels > max_channels:
        chosen = torch.topk(acts[0].mean(dim=(1, 2)), max_channels).indices.sort().values
    upsampled = torch.nn.functional.interpolate(acts[:, chosen], size=input_tensor.shape[-2:], mode="bilinear",
                                                align_corners=True)[0]
    flat = upsampled.flatten(1)
    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    masks = (upsampled - lo[:, None, None]) / (hi - lo + 1e-8)[:, None, None]
    idx = torch.as_tensor(class_indices, device=input_tensor.device)
    scores = []
    total = masks.shape[0]
    with torch.no_grad():
        for start in range(0, total, batch_size):
            batch = input_tensor * masks[start : start + batch_size, None]
            if input_tensor.is_contiguous(memory_format=torch.channels_last):
                batch = batch.contiguous(memory_format=torch.channels_last)
            scores.append(model(batch).float()[:, idx])
            if progress is not None:
                progress(min(start + batch_size, total), total)
    per_channel = torch.softmax(torch.cat(scores).T, dim=-1)  # (K, chosen)
    weights = torch.zeros(len(class_indices), n_channels, dtype=per_channel.dtype, device=per_channel.device)
    weights[:, chosen] = per_channel
    return weights.cpu().numpy()
