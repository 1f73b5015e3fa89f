"""The three networks of the paper as Keras functional models."""

from keras_inception.models.inception_resnet_v1 import InceptionResNetV1
from keras_inception.models.inception_resnet_v2 import InceptionResNetV2
from keras_inception.models.inception_v4 import InceptionV4
from keras_inception.models.layers import ResidualScale

__all__ = ["InceptionResNetV1", "InceptionResNetV2", "InceptionV4", "ResidualScale"]
