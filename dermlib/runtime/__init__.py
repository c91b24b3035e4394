"""Torch-free prediction for short-lived processes: the command line's fast path.

A cold ``python -m dermlib predict`` spent most of its time importing torch and timm (4.4 of 5.3 s on
2 cores) before the first photo was read. Here a model's forward pass (and the scope check's ImageNet
extractor) is exported to ONNX once per machine, into a cache keyed by the weights' SHA-256
(:mod:`~dermlib.runtime.cache`); later processes open the graph in ONNX Runtime, resize and normalise in PIL
and numpy exactly as timm's transform does (:mod:`~dermlib.runtime.geometry`), and never import torch.
Heatmaps, evaluation and training stay in torch.

* :mod:`~dermlib.runtime.model`: :class:`OnnxModel`, :func:`open_model`, :func:`predict_images`.
* :mod:`~dermlib.runtime.export`: fills the cache (the one module here that imports torch).
* :mod:`~dermlib.runtime.ort`: how every ONNX Runtime session in DermLens is opened.
"""
