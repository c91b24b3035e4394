"""Class activation maps for several classes in one pass, safe on a model shared between threads.

How one call works:

1. A forward hook on the card's target layer (one per member of an ensemble) is registered for the
   duration of the call. It acts only in the thread that registered it (other sessions' forward passes
   through the same cached model see a no-op) and is removed in ``finally``, so no hook outlives the call.
2. The forward pass runs under ``torch.no_grad`` up to the target layer. There the hook swaps the
   activation for a detached leaf tensor, repeated once per requested class, and switches gradients on:
   only the part of the network after the target layer records a graph, and the backward pass stops at
   the target layer. The maps are identical to grad-cam's own (tests check this), at a fraction of the
   cost of K full forward and backward passes.
3. ``torch.autograd.grad`` (not ``backward``) takes the gradients, so nothing accumulates in the shared
   parameters.
4. The grad-cam class of the chosen method turns activations and gradients into maps, which are
   rectified, min-max scaled and resized to the input size exactly as grad-cam's ``BaseCAM`` does;
   an ensemble's per-member maps are then averaged as ``BaseCAM`` combines several target layers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from dermlib.explain import methods, reuse
from dermlib.explain.methods import CamMethod, get_cam_method, score_cam_weights
from dermlib.explain.reshape import get_reshape
from dermlib.models.loading import LoadedModel


def explain(
    loaded: LoadedModel,
    image: Image.Image,
    class_indices: Sequence[int],
    method: str = "gradcam",
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Heatmaps showing where the model looked for each requested class.

    Args:
        loaded: A model from :func:`dermlib.models.load_model`.
        image: The RGB image (the same one that was classified).
        class_indices: Indices (card order) of the classes to explain, e.g. the top-k.
        method: A key of :data:`dermlib.explain.CAM_METHODS`.
        progress: For Score-CAM, called as ``progress(done, total)`` between batches of masked images
            (see :func:`dermlib.explain.methods.score_cam_weights`); raising from it stops the work.

    Returns:
        float32 array of shape (K, H, W) in [0, 1], H x W being the model's input size; map ``i``
        belongs to ``class_indices[i]``.

    Raises:
        ValueError: Unknown method or class index.
    """
    spec = get_cam_method(method)
    indices = [int(i) for i in class_indices]
    if not indices:
        return np.zeros((0, *loaded.input_size), dtype=np.float32)
    if any(i < 0 or i >= loaded.card.num_classes for i in indices):
        raise ValueError(f"Class indices must be in 0..{loaded.card.num_classes - 1}, got {indices}.")
    # Preprocess inside the retry so that after a GPU failure the input is rebuilt on the CPU.
    return loaded.run_with_fallback(
        lambda: cams_for_tensor(loaded, loaded.preprocess([image]), indices, method=spec.name, progress=progress))


def cams_for_tensor(
    loaded: LoadedModel, x: torch.Tensor, class_indices: list[int], method: str = "gradcam",
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Same as :func:`explain` for an already preprocessed (1, 3, H, W) tensor."""
    spec = get_cam_method(method)
    layers = loaded.target_layers()
    reshape = get_reshape(loaded.card.cam.get("reshape"), loaded.model)
    k = len(class_indices)
    copies = k if spec.uses_gradients else 1
    found = _from_prediction(loaded, x, class_indices, spec, reshape, copies)
    acts_np, grads_np = found if found is not None else _forward_backward(loaded, x, class_indices, spec, reshape,
                                                                          layers, copies)

    weighting = spec.weighting()
    targets = [ClassifierOutputTarget(i) for i in class_indices]
    h, w = x.shape[-2:]
    per_layer = []
    for layer, acts, grads in zip(layers, acts_np, grads_np, strict=True):
        if spec.name == "scorecam":
            channels = methods.score_cam_channels(len(loaded.card.members))
            weights = score_cam_weights(loaded.model, x, acts, class_indices, progress=progress,
                                        max_channels=channels)
            cam = (weights[:, :, None, None] * acts[:1]).sum(axis=1)
        elif spec.name in ("eigencam", "eigengradcam"):
            cam = first_component_projection(acts if spec.name == "eigencam" else grads * acts)
        else:
            x_rep = x.expand(copies, *x.shape[1:])
            cam = weighting.get_cam_image(x_rep, layer, targets, acts, grads, False)
        per_layer.append(scale_cam_image(np.maximum(cam, 0), (w, h)))
    # BaseCAM.aggregate_multi_layers: rectify, average the layers' maps, rescale (identical maps to grad-cam's).
    maps = scale_cam_image(np.maximum(np.stack(per_layer, axis=1), 0).mean(axis=1))
    if spec.slow:  # hundreds of masked images went through the network: hand their memory back
        from dermlib.runtime.memory import release_freed_memory

        release_freed_memory()
    if maps.shape[0] != k:  # class-agnostic methods: the same map for every class
        maps = np.repeat(maps[:1], k, axis=0)
    return maps.astype(np.float32)


def first_component_projection(batch: np.ndarray) -> np.ndarray:
    """Each map's projection on its first principal component: grad-cam's ``get_2d_projection``, faster.

    grad-cam asks NumPy for the full SVD (``full_matrices=True``), which builds a C x C matrix (1280 x 1280
    for EfficientNet-Lite) that the projection never uses; the thin SVD gives the same first component
    (the tests compare the maps with grad-cam's) in a fraction of the time.

    Args:
        batch: Activations (or gradient x activation), shape (B, C, h, w).

    Returns:
        float32 projections, shape (B, h, w).
    """
    batch = np.nan_to_num(np.asarray(batch, dtype=np.float32), nan=0.0)
    out = []
    for maps in batch:
        flat = maps.reshape(maps.shape[0], -1).T
        flat = flat - flat.mean(axis=0)  # centred, as grad-cam does: otherwise the map comes out negative
        _, _, vt = np.linalg.svd(flat, full_matrices=False)
        out.append((flat @ vt[0]).reshape(maps.shape[1:]))
    return np.asarray(out, dtype=np.float32)


Maps = tuple[list[np.ndarray], list[np.ndarray | None]]  # per target layer: activations, gradients


def _from_prediction(loaded: LoadedModel, x: torch.Tensor, class_indices: list[int], spec: CamMethod,
                     reshape: Callable | None, copies: int) -> Maps | None:
    """Activations recorded by the prediction of this same input and closed-form gradients, if both exist
    (see :mod:`dermlib.explain.reuse`); None otherwise."""
    if spec.name == "scorecam":
        return None
    cached = reuse.cached_activations(loaded, x)
    if cached is None:
        return None
    grads: list[np.ndarray | None] = [None] * len(cached)
    if spec.uses_gradients:
        exact = reuse.analytic_gradients(loaded, class_indices, cached)
        if exact is None:
            return None
        grads = [(reshape(g) if reshape else g).float().cpu().numpy() for g in exact]
    acts = [(reshape(a) if reshape else a).float().cpu().numpy() for a in cached]
    return [np.repeat(a, copies, axis=0) if copies > 1 else a for a in acts], grads


def _forward_backward(loaded: LoadedModel, x: torch.Tensor, class_indices: list[int], spec: CamMethod,
                      reshape: Callable | None, layers: list[torch.nn.Module], copies: int) -> Maps:
    """Target-layer activations (and gradients, for gradient methods) from a pass of their own."""
    k = len(class_indices)
    owner = threading.get_ident()
    captured: dict[int, torch.Tensor] = {}

    def make_hook(slot: int):
        def hook(_module: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
            # Another session's forward pass through the shared model, or a second call of the layer.
            if threading.get_ident() != owner or slot in captured:
                return None
            act = output.detach()
            leaf = act.repeat(copies, *([1] * (act.dim() - 1))) if copies > 1 else act.clone()
            if spec.uses_gradients:
                leaf.requires_grad_(True)
                torch.set_grad_enabled(True)  # thread-local; the enclosing no_grad restores it on exit
            captured[slot] = leaf
            return leaf

        return hook

    handles = [layer.register_forward_hook(make_hook(slot)) for slot, layer in enumerate(layers)]
    try:
        with torch.no_grad():
            logits = loaded.model(x)
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for slot, name in enumerate(loaded.card.cam_layers) if slot not in captured]
    if missing:
        raise RuntimeError(f"The target layer '{missing[0]}' was not reached.")
    leaves = [captured.pop(slot) for slot in range(len(layers))]

    grads_np: list[np.ndarray | None] = [None] * len(layers)
    if spec.uses_gradients:
        score = logits[torch.arange(k, device=logits.device), torch.as_tensor(class_indices, device=logits.device)]
        # For an ensemble the score is the ensemble's own logit, so each member's gradient is its share of it.
        grads = torch.autograd.grad(score.sum(), leaves)
        grads_np = [(reshape(g) if reshape else g).float().cpu().numpy() for g in grads]
    acts_np = [(reshape(leaf.detach()) if reshape else leaf.detach()).float().cpu().numpy() for leaf in leaves]
    return acts_np, grads_np
