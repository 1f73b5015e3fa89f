"""The three networks of the paper as Keras functional models, and the registry that describes
them. Importing this package registers the three networks (each file registers its own)."""

from keras_inception.models.class_names import ClassNames, class_names, with_class_names
from keras_inception.models.features import feature_model
from keras_inception.models.flops import forward_flops
from keras_inception.models.inception_resnet_v1 import InceptionResNetV1
from keras_inception.models.inception_resnet_v2 import InceptionResNetV2
from keras_inception.models.inception_v4 import InceptionV4
from keras_inception.models.inference import (
    FoldedBatchNormalization,
    inference_function,
    inference_model,
)
from keras_inception.models.layers import BatchNormalization, ResidualScale
from keras_inception.models.registry import (
    NetworkSpec,
    PretrainedWeights,
    get_network,
    network_names,
    networks,
)

__all__ = [
    "BatchNormalization",
    "ClassNames",
    "FoldedBatchNormalization",
    "InceptionResNetV1",
    "InceptionResNetV2",
    "InceptionV4",
    "NetworkSpec",
    "PretrainedWeights",
    "ResidualScale",
    "class_names",
    "feature_model",
    "forward_flops",
    "get_network",
    "inference_function",
    "inference_model",
    "network_names",
    "networks",
    "with_class_names",
]
