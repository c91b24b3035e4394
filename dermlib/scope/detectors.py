"""Out-of-distribution scores behind one small interface, by name (higher = further from the training data).

The scores themselves are :mod:`pytorch_ood`'s detectors, fitted and applied on precomputed features or
logits (``fit_features`` / ``predict_features``), so the same numbers serve the comparison, the stored
statistics and the app. This module adds what the app needs around them: a registry by name, and the
fitted statistics as plain tensors so they can be saved to and restored from a safetensors sidecar.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from dermlib.scope.names import SHIPPABLE

if TYPE_CHECKING:
    import torch

__all__ = ["OOD_SCORES", "SHIPPABLE", "OODScore", "create_score"]


class OODScore(ABC):
    """A fitted (or fit-free) out-of-distribution score.

    Attributes:
        name: Registry key.
        title: How people read it.
        reference: The paper it implements.
        uses: ``"features"`` (pooled features) or ``"logits"`` (a classifier's logits).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    reference: ClassVar[str]
    uses: ClassVar[str] = "features"

    def fit(self, x: np.ndarray, labels: np.ndarray, head: tuple[np.ndarray, np.ndarray] | None = None) -> OODScore:
        """Fit on in-distribution training data (no-op for fit-free scores); returns ``self``."""
        return self

    @abstractmethod
    def score(self, x: np.ndarray) -> np.ndarray:
        """One score per row of ``x``; higher means further from the training data."""

    def state(self) -> dict[str, torch.Tensor]:
        """The fitted statistics as named tensors (empty for fit-free scores)."""
        return {}

    def load_state(self, state: dict[str, torch.Tensor]) -> OODScore:
        """Restore the statistics saved by :meth:`state`; returns ``self``."""
        return self


def _t(x: np.ndarray) -> torch.Tensor:
    import torch

    return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)


def _array(x: Any) -> np.ndarray:
    """A float32 array from a stored statistic (a numpy array or a CPU torch tensor)."""
    return np.asarray(x, dtype=np.float32)


class _LogitScore(OODScore):
    """A fit-free score of a classifier's logits, computed by the pytorch-ood detector named ``_detector``."""

    uses = "logits"
    _detector: ClassVar[str]

    def score(self, x: np.ndarray) -> np.ndarray:
        import pytorch_ood.detector

        return getattr(pytorch_ood.detector, self._detector).score(_t(x)).double().numpy()


class MaxSoftmax(_LogitScore):
    """Maximum softmax probability (Hendrycks & Gimpel, ICLR 2017), negated."""

    name = "msp"
    title = "Maximum softmax probability"
    reference = "Hendrycks & Gimpel, ICLR 2017"
    _detector = "MaxSoftmax"


class Energy(_LogitScore):
    """Negative free energy of the logits (Liu et al., NeurIPS 2020)."""

    name = "energy"
    title = "Energy"
    reference = "Liu et al., NeurIPS 2020"
    _detector = "EnergyBased"


class Mahalanobis(OODScore):
    """Distance to the nearest class mean under one shared covariance (Lee et al., NeurIPS 2018)."""

    name = "mahalanobis"
    title = "Mahalanobis distance"
    reference = "Lee et al., NeurIPS 2018"

    def __init__(self) -> None:
        from pytorch_ood.detector import Mahalanobis as _Maha

        self._detector = _Maha(None)

    def fit(self, x, labels, head=None):
        import torch

        self._detector.fit_features(_t(x), torch.as_tensor(labels, dtype=torch.long))
        return self

    def score(self, x):
        return self._detector.predict_features(_t(x)).double().numpy()

    def state(self):
        return {"mu": self._detector.mu.contiguous(), "precision": self._detector.precision.contiguous()}

    def load_state(self, state):
        self._detector.mu = _t(_array(state["mu"]))
        self._detector.precision = _t(_array(state["precision"]))
        return self


class KNN(OODScore):
    """Distance to the k-th nearest training feature, on unit-length features (Sun et al., ICML 2022)."""

    name = "knn"
    title = "k-nearest-neighbour distance"
    reference = "Sun et al., ICML 2022"
    #: The paper's k is about 0.1% of the training set at ImageNet scale; our training splits are 2,000-4,000
    #: photos, where 10 neighbours (0.25-0.5%) keeps the score smooth without reaching across classes.
    k = 10

    def __init__(self) -> None:
        self._bank: np.ndarray | None = None  # unit-length rows, float32

    @property
    def neighbours(self) -> int:
        """The k actually used (never more than the bank holds)."""
        return min(self.k, len(self._bank))

    def _reference(self):
        """pytorch-ood's KNN detector on the same bank (built on demand: the app never needs it)."""
        import torch
        from pytorch_ood.detector import KNN as _KNN

        detector = _KNN(None, k=self.neighbours, normalize=True)
        detector.knn.set_params(n_jobs=1)
        return detector.fit_features(_t(self._bank), torch.zeros(len(self._bank), dtype=torch.long))

    def fit(self, x, labels, head=None):
        # Stored as int8 with one scale per row (a quarter of float32): the bank is quantised here, at fit
        # time, so the threshold and every figure measured after fitting use exactly the bank that ships.
        self._bank = _int8_round_trip(_unit_rows(_array(x)))
        return self

    def score(self, x):
        # The same distance pytorch-ood's KNN returns (Euclidean, unit-length rows, k-th neighbour), from one
        # matrix product in numpy: its scikit-learn search costs about 4 ms per single photo, this about
        # 0.3 ms, needs no second copy of the bank, and no torch (the command line's fast path uses it).
        z = _unit_rows(_array(x))
        similarity = z @ self._bank.T
        k = self.neighbours
        kth = np.partition(similarity, similarity.shape[1] - k, axis=1)[:, similarity.shape[1] - k]
        return np.sqrt(np.clip(2.0 - 2.0 * kth.astype(np.float64), 0.0, None))

    def reference_score(self, x: np.ndarray) -> np.ndarray:
        """pytorch-ood's own KNN score for ``x`` (what :meth:`score` reproduces; used by the tests)."""
        return self._reference().predict_features(_t(x)).double().numpy()

    def state(self):
        import torch

        q, scale = _int8_rows(self._bank)
        return {"bank_int8": torch.from_numpy(np.ascontiguousarray(q)), "bank_scale": _t(scale)}

    def load_state(self, state):
        if "bank_int8" in state:
            self._bank = _unit_rows(_array(state["bank_int8"]) * _array(state["bank_scale"])[:, None])
        else:  # sidecars fitted before the int8 bank: float16 rows
            self._bank = _array(state["bank"])
        return self


def _int8_rows(bank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: ``bank ~= q * scale[:, None]`` (scale = the row's largest magnitude / 127)."""
    scale = (np.maximum(np.abs(bank).max(axis=1), 1e-12) / 127.0).astype(np.float32)
    return np.clip(np.round(bank / scale[:, None]), -127, 127).astype(np.int8), scale


def _unit_rows(bank: np.ndarray) -> np.ndarray:
    norms = np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-12)
    return (bank / norms).astype(np.float32)


def _int8_round_trip(bank: np.ndarray) -> np.ndarray:
    """The bank as it reads back from its int8 storage (rows brought back to unit length, as when loading)."""
    q, scale = _int8_rows(bank)
    return _unit_rows(q.astype(np.float32) * scale[:, None])


class ViM(OODScore):
    """Virtual-logit matching (Wang et al., CVPR 2022): residual off the features' principal subspace."""

    name = "vim"
    title = "Virtual-logit matching (ViM)"
    reference = "Wang et al., CVPR 2022"

    def __init__(self) -> None:
        self._detector = None

    def fit(self, x, labels, head=None):
        import torch
        from pytorch_ood.detector import ViM as _ViM

        if head is None:
            raise ValueError("ViM needs the classifier's weight and bias")
        w, b = (_t(a) for a in head)
        d = min(max(1, x.shape[1] // 2), len(x) - 1, 512)
        self._detector = _ViM(None, d=d, w=w, b=b)
        self._detector.fit_features(_t(x), torch.as_tensor(labels, dtype=torch.long))
        return self

    def score(self, x):
        return self._detector.predict_features(_t(x)).double().numpy()

    def state(self):
        det = self._detector
        return {"w": det.w, "b": det.b, "u": det.u, "principal_subspace": det.principal_subspace.contiguous(),
                "alpha": _t(np.array([det.alpha]))}

    def load_state(self, state):
        from pytorch_ood.detector import ViM as _ViM

        det = _ViM(None, d=int(state["principal_subspace"].shape[1]), w=_t(_array(state["w"])),
                   b=_t(_array(state["b"])))
        det.principal_subspace = _t(_array(state["principal_subspace"]))
        det.alpha = float(np.asarray(state["alpha"]).reshape(-1)[0])
        det.u = _t(_array(state["u"]))
        self._detector = det
        return self


#: Every score by name (feeds the comparison, the card and the CLI).
OOD_SCORES: dict[str, type[OODScore]] = {cls.name: cls for cls in (MaxSoftmax, Energy, Mahalanobis, KNN, ViM)}


def create_score(name: str) -> OODScore:
    """A new, unfitted score by name.

    Raises:
        KeyError: No score of that name (the message lists the known ones).
    """
    try:
        return OOD_SCORES[name]()
    except KeyError:
        raise KeyError(f"Unknown OOD score {name!r}; known: {', '.join(OOD_SCORES)}") from None
