"""Lesion segmentation: a UNet that outlines the lesion, the ABC measurements of its mask, and the crop.

Segmentation models are the registry's second task: a ``weights/<id>/`` folder whose card has
``"task": "segmentation"`` (see :mod:`dermlib.segment.card`). Modules: ``model`` builds and loads the
network, ``measure`` turns a mask into lesion measurements, ``crop`` cuts the lesion out for the
classifier, ``train`` trains and evaluates on PH2, ``cli`` adds the ``segment`` command.
"""
