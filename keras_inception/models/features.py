"""Backbone feature maps for detection and segmentation: each network's end points at strides 4,
8, 16 and 32, as keras-hub's `pyramid_outputs` and timm's `features_only` give them."""

import keras

from keras_inception.models.blocks import SCOPE_SEPARATOR
from keras_inception.models.registry import FEATURE_STRIDES, get_network


def end_point_layers(model, network):
    """{stride: the layer whose output is `network`'s end point at that stride} in `model` (one
    of ours, built by that network's factory): the last layer built under the stage's scopes."""
    spec = get_network(network)
    found = {}
    for layer in model.layers:
        top_scope = layer.name.split(SCOPE_SEPARATOR, 1)[0]
        for stride, scopes in spec.feature_scopes.items():
            if top_scope in scopes:
                found[stride] = layer
    missing = sorted(set(FEATURE_STRIDES) - found.keys())
    if missing:
        raise ValueError(
            f"{model.name} has no layer under the {network} end-point scopes of strides {missing}: "
            f"is it a model built by {spec.factory.__name__}?"
        )
    return dict(sorted(found.items()))


def feature_model(network, strides=FEATURE_STRIDES, **factory_arguments):
    """A model from images to `{"P2": ..., "P5": ...}`, the feature maps of `network` at
    `strides` (P<n> is stride 2**n, as keras-hub names them).

    `factory_arguments` go to the network's factory (`weights="imagenet"`, `input_shape`,
    `depths`, ...); the classifier is left out, and any input size of at least 75 works.
    """
    unknown = sorted(set(strides) - set(FEATURE_STRIDES))
    if unknown:
        raise ValueError(f"strides must be among {FEATURE_STRIDES}, got {unknown}.")
    spec = get_network(network)
    backbone = spec.factory(include_top=False, **factory_arguments)
    layers = end_point_layers(backbone, network)
    outputs = {f"P{stride.bit_length() - 1}": layers[stride].output for stride in strides}
    return keras.Model(backbone.input, outputs, name=f"{backbone.name}_features")
