"""keras.applications' Inception-ResNet-v2 `.h5` files (legacy HDF5, the format of its public
ImageNet weights).

Those files name layers `conv2d_17`, `batch_normalization_17`...: Keras loads them by position
among the layers that hold weights. Our Inception-ResNet-v2 creates its weighted layers in
keras.applications' order, so position gives the slim name of each array.
"""

import os

from keras_inception.models import InceptionResNetV2, get_network
from keras_inception.weights.legacy_h5 import read_layers
from keras_inception.weights.matching import Source, slim_name

# The networks keras.applications publishes, and our factory that creates the weighted layers in
# keras.applications' order.
KERAS_APPLICATIONS_NETWORKS = {"inception_resnet_v2": InceptionResNetV2}


def read_keras_applications(path, architecture="inception_resnet_v2"):
    """Read a keras.applications InceptionResNetV2 `.h5` file (weights-only or whole model, with
    or without the top) into tensors by slim name."""
    path = os.fspath(path)
    description = f"keras.applications InceptionResNetV2 file {path!r}"
    if architecture not in KERAS_APPLICATIONS_NETWORKS:
        raise ValueError(
            f"{description} holds no {get_network(architecture).title} weights: "
            f"keras.applications publishes {', '.join(_titles())} only."
        )
    layers = [list(weights.values()) for weights in read_layers(path).values()]
    names = _weight_names_in_keras_order(KERAS_APPLICATIONS_NETWORKS[architecture])
    # The notop file is the same list without the classifier.
    if len(layers) not in (len(names), len(names) - 1):
        raise ValueError(
            f"{description} has {len(layers)} layers with weights; keras.applications' "
            f"InceptionResNetV2 has {len(names)} (or {len(names) - 1} without the top), so this is "
            "a file of another network."
        )
    tensors = {}
    for layer_names, arrays in zip(names, layers):
        if len(layer_names) != len(arrays):
            raise ValueError(
                f"{description}: layer holding {layer_names[0]} has {len(arrays)} arrays, "
                f"expected {len(layer_names)}."
            )
        tensors.update(zip(layer_names, arrays))
    return Source(description, tensors)


def _titles():
    return [get_network(name).title for name in KERAS_APPLICATIONS_NETWORKS]


def _weight_names_in_keras_order(factory):
    """Slim names of our full network's weights, grouped by layer in the order Keras' HDF5
    format stores them: layers that hold weights in `model.layers` order, each layer's trainable
    weights before the others."""
    # The input size changes no weight shape here; a small one builds faster.
    model = factory(weights=None, input_shape=(75, 75, 3))
    return [
        [slim_name(layer, v) for v in layer.trainable_weights + layer.non_trainable_weights]
        for layer in model.layers
        if layer.weights
    ]
