"""The keras.applications conventions shared by the three factories: argument checks, the input,
the head, and loading weights. Each network file only supplies its body."""

import os

import keras
from keras import layers

from keras_inception.models.blocks import aux_classifier, scope
from keras_inception.models.layers import check_residual_scale

DEFAULT_SIZE = 299
# Below 75x75 the stride-2 stages of every network reduce the map to nothing.
MIN_SIZE = 75
POOLINGS = (None, "avg", "max")

ARGUMENTS_DOC = """include_top: whether to put the ImageNet-style classifier on top.
        weights: `None` (random initialisation), the name of published weights (`"imagenet"`;
            for Inception-ResNet-v1 `"facenet-vggface2"` or `"facenet-casia"`, see
            docs/weights.md) or the path to a Keras weights file.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: `(height, width, 3)`, each side at least 75; default 299x299 with the top.
        pooling: `None`, `"avg"` or `"max"`: global pooling of the features when
            `include_top=False`.
        classes: number of classes of the classifier.
        classifier_activation: activation of the classifier (`None` returns logits).
        name: the model's name.
        dropout_rate: dropout before the classifier (slim keeps 0.8 of the units: rate 0.2).
        aux_logits: with `include_top`, also return slim's auxiliary classifier on the 17x17
            features as a second output (a training aid; the paper weights its loss by 0.4)."""


def with_arguments_doc(factory):
    """Fill the arguments shared by the three factories into a factory's docstring."""
    if factory.__doc__:  # None under `python -OO`
        factory.__doc__ = factory.__doc__.format(arguments=ARGUMENTS_DOC)
    return factory


def check_depths(depths, minimums, network):
    """Return `depths` (blocks in stages A, B, C) as a tuple of ints, each at least its minimum."""
    if (
        not isinstance(depths, (tuple, list))
        or len(depths) != 3
        or any(isinstance(d, bool) or not isinstance(d, int) for d in depths)
    ):
        raise ValueError(f"{network}: depths must be three integers (A, B, C), got {depths!r}.")
    for stage, depth, minimum in zip("ABC", depths, minimums):
        if depth < minimum:
            raise ValueError(
                f"{network}: depths[{'ABC'.index(stage)}] (stage {stage}) must be at least "
                f"{minimum}, got {depth}."
            )
    return tuple(depths)


def check_residual_scales(residual_scale):
    """Return one scale per block type (A, B, C) from a float or a sequence of three."""
    if isinstance(residual_scale, (tuple, list)):
        if len(residual_scale) != 3:
            raise ValueError(
                "residual_scale must be one number or three (for blocks A, B, C), "
                f"got {residual_scale!r}."
            )
        return tuple(
            check_residual_scale(value, f"residual_scale[{i}] (block {'ABC'[i]})")
            for i, value in enumerate(residual_scale)
        )
    return (check_residual_scale(residual_scale),) * 3


def check_arguments(
    *, weights, include_top, pooling, classes, dropout_rate, aux_logits, named_weights
):
    """The checks every factory makes before building anything."""
    if not (weights is None or weights in named_weights or isinstance(weights, (str, os.PathLike))):
        raise ValueError(_weights_message(named_weights, weights))
    if isinstance(weights, (str, os.PathLike)) and weights not in named_weights:
        if not os.path.exists(weights):
            raise ValueError(_weights_message(named_weights, weights) + " No such file.")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"classes must be a positive integer, got {classes!r}.")
    if isinstance(dropout_rate, bool) or not (
        isinstance(dropout_rate, (int, float)) and 0 <= dropout_rate < 1
    ):
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}.")
    if weights == "imagenet" and weights in named_weights and include_top and classes != 1000:
        raise ValueError(
            'If using `weights="imagenet"` with `include_top=True`, `classes` should be 1000. '
            f"Received: classes={classes}."
        )
    if aux_logits and not include_top:
        raise ValueError(
            "aux_logits=True needs include_top=True: the auxiliary head is a classifier."
        )


def _weights_message(named_weights, weights):
    names = "".join(f", '{name}'" for name in named_weights)
    return (
        "The `weights` argument should be either `None` (random initialization)"
        f"{names}, or the path to the weights file to be loaded. Received: weights={weights!r}."
    )


def make_input(input_shape, input_tensor, include_top):
    """Check `input_shape` / `input_tensor` and return the Keras input tensor of the model."""
    if keras.config.image_data_format() != "channels_last":
        raise ValueError(
            "keras_inception builds channels_last models only; "
            f"keras.config.image_data_format() is {keras.config.image_data_format()!r}."
        )
    if input_tensor is not None and input_shape is None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        input_shape = (DEFAULT_SIZE, DEFAULT_SIZE, 3) if include_top else (None, None, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(
            f"input_shape must be (height, width, channels), got {input_shape!r} "
            f"({len(input_shape)} elements)."
        )
    height, width, channels = input_shape
    if channels != 3:
        raise ValueError(f"input_shape must have 3 channels (RGB), got {input_shape!r}.")
    if include_top and (height is None or width is None):
        raise ValueError(
            "include_top=True needs a static input size (the classifier and the auxiliary head are "
            f"built for one size); got input_shape={input_shape!r}."
        )
    for size in (height, width):
        if size is not None and size < MIN_SIZE:
            raise ValueError(
                f"Input size must be at least {MIN_SIZE}x{MIN_SIZE}; got input_shape={input_shape!r}."
            )
    if input_tensor is None:
        return layers.Input(shape=input_shape)
    if keras.backend.is_keras_tensor(input_tensor):
        return input_tensor
    return layers.Input(tensor=input_tensor, shape=input_shape)


def classifier(x, classes, classifier_activation, dropout_rate):
    """Slim's head: global average pool -> dropout -> dense. The dense runs in float32 so that a
    mixed-precision model still returns float32 logits and probabilities."""
    x = layers.GlobalAveragePooling2D(name=scope("Logits", "AvgPool"))(x)
    if dropout_rate:
        x = layers.Dropout(dropout_rate, name=scope("Logits", "Dropout"))(x)
    return layers.Dense(
        classes, activation=classifier_activation, dtype="float32", name=scope("Logits", "Logits")
    )(x)


def feature_pooling(x, pooling):
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def build(
    body,
    *,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    name,
    dropout_rate,
    aux_logits,
    aux_names,
    named_weights=(),
    top=None,
):
    """Check the arguments, run the network's `body` on the input, put the head on and load weights.

    `body(x)` returns the features before global pooling and the 17x17 features the auxiliary head
    reads. `top(features)`, when given, replaces the ImageNet classifier (FaceNet's embedding head).
    `named_weights` maps the names `weights` may take to their `keras_inception.weights.WeightsFile`.
    """
    check_arguments(
        weights=weights,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        dropout_rate=dropout_rate,
        aux_logits=aux_logits,
        named_weights=named_weights,
    )
    img_input = make_input(input_shape, input_tensor, include_top)
    features, pre_aux = body(img_input)
    if not include_top:
        outputs = feature_pooling(features, pooling)
    elif top is not None:
        outputs = top(features)
    else:
        outputs = classifier(features, classes, classifier_activation, dropout_rate)
    if include_top and aux_logits:
        outputs = [outputs, aux_classifier(pre_aux, classes, classifier_activation, aux_names)]
    inputs = img_input if input_tensor is None else keras.utils.get_source_inputs(input_tensor)
    model = keras.Model(inputs, outputs, name=name)
    if weights in named_weights:
        # Published weights come from other formats: converted strictly, the heads this
        # configuration leaves out (top, auxiliary head) dropped.
        named_weights[weights].load(model)
    elif weights is not None:
        load_weights(model, weights)
    return model


def load_weights(model, weights):
    """Load a Keras weights file into `model`, naming the file and the network if it does not fit."""
    try:
        model.load_weights(weights)
    except (ValueError, KeyError) as error:
        raise ValueError(
            f"Could not load the weights file {os.fspath(weights)!r} into {model.name}: {error}"
        ) from error
    return model
