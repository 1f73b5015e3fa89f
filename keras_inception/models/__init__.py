"""The three networks of the paper as Keras functional models."""

from keras_inception.models.flops import forward_flops
from keras_inception.models.inception_resnet_v1 import InceptionResNetV1
from keras_inception.models.inception_resnet_v2 import InceptionResNetV2
from keras_inception.models.inception_v4 import InceptionV4
from keras_inception.models.layers import BatchNormalization, ResidualScale

# The networks by the names recipes, converters and the command line use.
NETWORKS = {
    "inception_v4": InceptionV4,
    "inception_resnet_v1": InceptionResNetV1,
    "inception_resnet_v2": InceptionResNetV2,
}

__all__ = [
    "BatchNormalization",
    "InceptionResNetV1",
    "InceptionResNetV2",
    "InceptionV4",
    "NETWORKS",
    "ResidualScale",
    "forward_flops",
]
