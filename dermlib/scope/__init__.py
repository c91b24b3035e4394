"""The out-of-scope check: is this a photo of skin, of the model's modality, and good enough to read?

* :mod:`~dermlib.scope.checker`: :func:`check_images` / :class:`ScopeChecker` (run by ``inference.predict``);
* :mod:`~dermlib.scope.fit`: :func:`fit_scope` (``python -m dermlib scope fit``);
* :mod:`~dermlib.scope.detectors`: the out-of-distribution scores by name (``OOD_SCORES``, from pytorch-ood);
* :mod:`~dermlib.scope.quality`: blur, exposure and size;
* :mod:`~dermlib.scope.sources`: the data-root folders it is fitted and reported on.

Submodules are imported where used, so importing this package costs nothing.
"""
