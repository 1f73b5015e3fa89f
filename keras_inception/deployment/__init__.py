"""Deployment: a trained model exported as an artefact that takes raw images (SavedModel, LiteRT,
ONNX, OpenVINO), and the runtimes that read such an artefact back.

The exported function does what `predict` does before and after the network (slim's central
crop, the [-1, 1] scaling, the softmax), so an artefact fed camera pixels answers as our own
`predict` does; the class names travel beside it.
"""

from keras_inception.deployment.formats import FORMATS, export
from keras_inception.deployment.runtimes import ExportedModel, load_exported
from keras_inception.deployment.serving import RawImagePreprocessing, serving_model

__all__ = [
    "FORMATS",
    "ExportedModel",
    "RawImagePreprocessing",
    "export",
    "load_exported",
    "serving_model",
]
