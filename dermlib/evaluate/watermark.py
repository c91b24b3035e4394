"""Does a watermark change the answer? Paste DermNet's logo onto logo-free photos and count top-1 flips.

A model trained on DermNet NZ photos (all of which carry DermNet's logo bottom-left) and Fitzpatrick17k
photos (none of which do) could learn the logo as a cue for the DermNet classes. The card's mask
(:mod:`dermlib.masking`) is meant to stop that; this module measures whether it does: each logo-free
photo is scored as it is and with a real logo pasted where DermNet puts it, and the share of photos
whose top-1 class changes is reported with its Wilson interval.

Two logos are available from the real DermNet photos (``ROOT`` is ``../shared/data/dermnet``):

* ``alpha`` (:func:`logo_from_dermnet`): the logo itself, a white mark whose opacity is estimated from
  the mean of many DermNet photos (the logo sits at the same place in all of them, the skin does not),
  blended onto the photo as DermNet blends it;
* ``crop`` (:func:`logo_crop`): a rectangular cut-out of one DermNet photo around its logo, skin
  included, which is the harsher test.

Both are placed at the fractions of the width and height where DermNet places its logo, scaled with
the photo's width.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dermlib.evaluate.metrics import round_floats, wilson_interval

#: Where DermNet's logo sits (x0, y0, x1, y1 as fractions of a 341 x 256 photo): x 28-92 px, y 172-236 px.
LOGO_BOX: tuple[float, float, float, float] = (28 / 341, 172 / 256, 92 / 341, 236 / 256)


@dataclass(frozen=True)
class Logo:
    """A logo to paste: RGB colour and opacity (both H x W), and where it goes (fractions of the photo)."""

    rgb: np.ndarray
    alpha: np.ndarray
    box: tuple[float, float, float, float] = LOGO_BOX

    def paste(self, image: Image.Image) -> Image.Image:
        """Return a copy of ``image`` with the logo blended in at :attr:`box`, scaled with the photo's width.

        The logo keeps its own aspect ratio; its width is the box's share of the photo's width and its
        bottom edge sits at the box's bottom fraction, as on a DermNet photo.
        """
        base = np.asarray(image.convert("RGB"), dtype=np.float32).copy()
        h, w = base.shape[:2]
        x0, _, x1, y1 = self.box
        lw = max(1, round((x1 - x0) * w))
        lh = max(1, round(lw * self.alpha.shape[0] / self.alpha.shape[1]))
        left, bottom = round(x0 * w), min(h, round(y1 * h))
        top = max(0, bottom - lh)
        lh = bottom - top
        rgb = np.asarray(Image.fromarray(self.rgb.astype(np.uint8)).resize((lw, lh), Image.Resampling.BICUBIC),
                         dtype=np.float32)
        alpha = np.asarray(Image.fromarray((self.alpha * 255).astype(np.uint8)).resize(
            (lw, lh), Image.Resampling.BICUBIC), dtype=np.float32)[..., None] / 255.0
        right = min(w, left + lw)
        rgb, alpha = rgb[:, : right - left], alpha[:, : right - left]
        region = base[top:bottom, left:right]
        base[top:bottom, left:right] = region * (1 - alpha) + rgb * alpha
        return Image.fromarray(base.clip(0, 255).astype(np.uint8))


def _dermnet_photos(root: str | os.PathLike[str], n: int, seed: int) -> list[Path]:
    paths = sorted(Path(root).expanduser().glob("images/*/*.jpg"))
    if not paths:
        raise FileNotFoundError(f"No DermNet photos under {root}/images/<category>/.")
    rng = np.random.default_rng(seed)
    return [paths[i] for i in sorted(rng.choice(len(paths), size=min(n, len(paths)), replace=False))]


def logo_from_dermnet(root: str | os.PathLike[str], n: int = 400, seed: int = 0) -> Logo:
    """Estimate the logo's opacity from the mean of ``n`` DermNet photos.

    On the mean photo the skin averages out to a smooth field and the logo, always at the same place,
    stays sharp: ``mean = (1 - a) * background + a * white``. The background under the logo is taken as
    the median of the mean photo around the logo box, which the logo does not reach.
    """
    size = (341, 256)
    acc = np.zeros((size[1], size[0], 3), dtype=np.float64)
    photos = _dermnet_photos(root, n, seed)
    for path in photos:
        with Image.open(path) as img:
            acc += np.asarray(img.convert("RGB").resize(size, Image.Resampling.BILINEAR), dtype=np.float64)
    mean = acc / len(photos)
    x0, y0, x1, y1 = (round(LOGO_BOX[0] * size[0]), round(LOGO_BOX[1] * size[1]),
                      round(LOGO_BOX[2] * size[0]), round(LOGO_BOX[3] * size[1]))
    ring = np.concatenate([mean[max(0, y0 - 12):y0, x0:x1].reshape(-1, 3),
                           mean[y0:y1, x1:x1 + 12].reshape(-1, 3)])
    background = np.median(ring, axis=0)
    patch = mean[y0:y1, x0:x1]
    alpha = ((patch - background) / np.maximum(255.0 - background, 1.0)).mean(axis=2)
    # Logos are never fully opaque on the mean photo because a few photos are cropped differently; the
    # brightest logo pixel is taken as fully drawn so the pasted logo is as strong as on a single photo.
    alpha = np.clip(alpha / max(float(alpha.max()), 1e-6), 0.0, 1.0)
    alpha[alpha < 0.15] = 0.0
    return Logo(rgb=np.full(patch.shape, 250.0), alpha=alpha)


def logo_crop(root: str | os.PathLike[str], seed: int = 0) -> Logo:
    """A rectangular crop around the logo of one DermNet photo (skin included), pasted fully opaque."""
    path = _dermnet_photos(root, 1, seed)[0]
    with Image.open(path) as img:
        photo = img.convert("RGB").resize((341, 256), Image.Resampling.BILINEAR)
    x0, y0, x1, y1 = (round(LOGO_BOX[0] * 341), round(LOGO_BOX[1] * 256), round(LOGO_BOX[2] * 341),
                      round(LOGO_BOX[3] * 256))
    rgb = np.asarray(photo.crop((x0, y0, x1, y1)), dtype=np.float64)
    return Logo(rgb=rgb, alpha=np.ones(rgb.shape[:2]))


def top1_shift(model: Any, images: Sequence[Image.Image], logo: Logo, batch_size: int = 16,
               use_mask: bool = True) -> dict[str, Any]:
    """Score each photo with and without the logo; report how often the top-1 class changes.

    Args:
        model: A :class:`dermlib.models.loading.LoadedModel`.
        images: Logo-free RGB photos.
        logo: What to paste (:func:`logo_from_dermnet` or :func:`logo_crop`).
        batch_size: Photos per forward pass.
        use_mask: Apply the card's mask as inference does (False scores the photos unmasked, to show what
            the mask protects against; the model is not changed).

    Returns:
        ``{"n", "changed", "rate", "rate_ci95", "mean_abs_prob_change", "masked"}``; ``mean_abs_prob_change``
        is the mean absolute change of the original top-1 class's probability.
    """
    saved = model.mask
    try:
        model.mask = saved if use_mask else None
        before, after = [], []
        for start in range(0, len(images), batch_size):
            chunk = list(images[start : start + batch_size])
            before.append(model.predict_proba(chunk))
            after.append(model.predict_proba([logo.paste(img) for img in chunk]))
    finally:
        model.mask = saved
    p0, p1 = np.concatenate(before), np.concatenate(after)
    top = p0.argmax(1)
    changed = int((top != p1.argmax(1)).sum())
    n = len(top)
    ci = wilson_interval(changed, n)
    return round_floats({
        "n": n,
        "changed": changed,
        "rate": changed / n if n else None,
        "rate_ci95": list(ci) if ci else None,
        "mean_abs_prob_change": float(np.abs(p0[np.arange(n), top] - p1[np.arange(n), top]).mean()) if n else None,
        "masked": bool(use_mask and saved is not None),
    })
