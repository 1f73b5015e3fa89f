"""Pretrained weights from other implementations, converted strictly into our models.

Every reader turns its format into a `Source`: tensors by TF-slim variable name, in Keras layout.
`assign_weights` then loads a `Source` into a model only if every tensor has exactly one home and
every weight gets a value; otherwise it raises one `WeightsMismatchError` listing all problems.

    source = read_source("inception_v4.ckpt", "inception_v4")   # or a timm .safetensors, an .h5...
    model = InceptionV4(weights=None)
    assign_weights(model, source)

`convert` does the same to a `.weights.h5` file, and `load_pretrained` loads the published
weights that a network's spec names (`weights="imagenet"`, the FaceNet names). This package
imports `keras_inception.models`, never the reverse.
"""

from keras_inception.weights.convert import SOURCE_FORMATS, convert, read_source
from keras_inception.weights.keras_applications import read_keras_applications
from keras_inception.weights.keras_facenet import read_keras_facenet
from keras_inception.weights.matching import (
    Source,
    WeightsMismatchError,
    assign_weights,
    model_tensors,
)
from keras_inception.weights.pretrained import load_pretrained, read_pretrained
from keras_inception.weights.pytorch import read_state_dict
from keras_inception.weights.slim import read_slim_checkpoint

__all__ = [
    "SOURCE_FORMATS",
    "Source",
    "WeightsMismatchError",
    "assign_weights",
    "convert",
    "load_pretrained",
    "model_tensors",
    "read_keras_applications",
    "read_keras_facenet",
    "read_pretrained",
    "read_slim_checkpoint",
    "read_source",
    "read_state_dict",
]
