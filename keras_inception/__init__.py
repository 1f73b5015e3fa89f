"""keras-inception: Inception-v4 and Inception-ResNet-v1/v2 for Keras 3, with the paper's training
method. Importing the package registers its layers, so saved models load without custom_objects."""

from keras_inception.imagenet import decode_predictions, preprocess_input
from keras_inception.models import (
    InceptionResNetV1,
    InceptionResNetV2,
    InceptionV4,
    ResidualScale,
)

__version__ = "0.1.0"

__all__ = [
    "InceptionResNetV1",
    "InceptionResNetV2",
    "InceptionV4",
    "ResidualScale",
    "decode_predictions",
    "preprocess_input",
]
