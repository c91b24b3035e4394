"""Typed exceptions of dermlib.

Every failure a user can cause (a bad image, a missing model, a broken dataset folder) is raised as a
subclass of :class:`DermLensError` whose message is written for a person, so the app and the CLI can
show ``str(error)`` as it is.
"""

from __future__ import annotations


class DermLensError(Exception):
    """Base class of every error dermlib raises on purpose."""


class ImageError(DermLensError, ValueError):
    """An uploaded or given image cannot be used (empty, not an image, corrupt, too large, too small)."""


class ModelError(DermLensError):
    """A model cannot be found, loaded, or does not match its card."""


class CardError(ModelError):
    """A model card is missing, malformed, or fails its schema."""


class DatasetError(DermLensError):
    """A dataset folder is missing, has the wrong layout, or cannot be read."""


class KnowledgeError(DermLensError):
    """The knowledge base is missing an entry or an entry fails its schema."""


class TrainingError(DermLensError, ValueError):
    """Training options that cannot work together (e.g. a weighted sampler in a torchrun job)."""


class ReportError(DermLensError, ValueError):
    """A case report cannot be built or its FHIR resource is not valid; the message says why."""
