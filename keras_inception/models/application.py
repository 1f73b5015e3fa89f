"""The keras.applications conventions shared by the three factories: argument checks, the input,
the head, and loading weights. Each network file supplies its `NetworkSpec` and its body.

`check_arguments` is every check a factory makes, run before anything is built; the recipe calls
it too, so a recipe is refused for exactly the settings the factory would refuse.
"""

import dataclasses
import os

import keras
from keras import layers

from keras_inception.errors import ConfigError, check, is_int, is_number
from keras_inception.models import registry
from keras_inception.models.blocks import aux_classifier, scope
from keras_inception.models.layers import check_residual_scale

DEFAULT_SIZE = 299
# Below 75x75 the stride-2 stages of every network reduce the map to nothing.
MIN_SIZE = 75
POOLINGS = (None, "avg", "max")
# The auxiliary head pools the stride-16 map with a 5x5 window.
AUX_POOL_SIZE = 5

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


def feature_map_size(side, stride):
    """The side of the feature map at `stride` (4, 8, 16 or 32) for an input `side`; the three
    networks shrink alike."""
    size = (side - 3) // 2 + 1 - 2  # a VALID 3x3 stride-2 conv, then a VALID 3x3 conv
    size = (size - 3) // 2 + 1 - 2  # stride 4: a VALID 3x3 stride-2 step, then a VALID 3x3 conv
    for _ in range(stride.bit_length() - 3):  # strides 8, 16, 32: a VALID 3x3 stride-2 step each
        size = (size - 3) // 2 + 1
    return size


def _smallest_input(stride, size):
    side = MIN_SIZE
    while feature_map_size(side, stride) < size:
        side += 1
    return side


# The smallest input side the auxiliary head accepts.
MIN_AUX_INPUT_SIZE = _smallest_input(16, AUX_POOL_SIZE)


@dataclasses.dataclass(frozen=True)
class Arguments:
    """A factory's arguments once checked: `depths` and `residual_scales` are filled in from the
    network's defaults, `input_shape` from `input_tensor` or the default size."""

    include_top: bool
    weights: object
    input_tensor: object
    input_shape: tuple
    pooling: str | None
    classes: int
    classifier_activation: object
    name: str | None
    dropout_rate: float
    aux_logits: bool
    depths: tuple[int, int, int]
    residual_scales: tuple[float, float, float] | None
    embedding_size: int | None


def check_arguments(
    spec,
    *,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    dropout_rate=0.2,
    aux_logits=False,
    depths=None,
    residual_scale=None,
    embedding_size=None,
):
    """Check a factory's arguments (all of them: a factory passes its `locals()`) for the network
    `spec` without building anything; return the `Arguments`. Each problem is a `ConfigError`
    whose `key` is the argument's name."""
    _check_weights(spec, weights)
    check(pooling in POOLINGS, "pooling", f"one of {POOLINGS}", pooling)
    check(is_int(classes, minimum=1), "classes", "a positive integer", classes)
    check(
        is_number(dropout_rate) and 0 <= dropout_rate < 1, "dropout_rate", "in [0, 1)", dropout_rate
    )
    if aux_logits and not include_top:
        raise ConfigError(
            "aux_logits=True needs include_top=True: the auxiliary head is a classifier.",
            key="aux_logits",
        )
    input_shape = _check_input_shape(input_shape, input_tensor, include_top)
    if aux_logits:
        _check_aux_input(input_shape)
    depths = _check_depths(spec, spec.depths if depths is None else depths)
    scales = _check_residual_scales(spec, residual_scale)
    _check_embedding(spec, embedding_size, aux_logits)
    _check_head_fits_weights(spec, weights, include_top, classes, embedding_size)
    return Arguments(
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name or spec.name,
        dropout_rate=dropout_rate,
        aux_logits=aux_logits,
        depths=depths,
        residual_scales=scales,
        embedding_size=embedding_size,
    )


def _check_weights(spec, weights):
    if weights is None or weights in spec.weights:
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise ConfigError(_weights_message(spec, weights), key="weights")
    if not os.path.exists(weights):
        raise ConfigError(_weights_message(spec, weights) + " No such file.", key="weights")


def _weights_message(spec, weights):
    names = "".join(f", '{name}'" for name in spec.weights)
    return (
        "The `weights` argument should be either `None` (random initialization)"
        f"{names}, or the path to the weights file to be loaded. Received: weights={weights!r}."
    )


def _check_input_shape(input_shape, input_tensor, include_top):
    if input_tensor is not None and input_shape is None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        input_shape = (DEFAULT_SIZE, DEFAULT_SIZE, 3) if include_top else (None, None, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ConfigError(
            f"input_shape must be (height, width, channels), got {input_shape!r} "
            f"({len(input_shape)} elements).",
            key="input_shape",
        )
    height, width, channels = input_shape
    check(channels == 3, "input_shape", "3 channels (RGB)", input_shape)
    if include_top and (height is None or width is None):
        raise ConfigError(
            "include_top=True needs a static input size (the classifier and the auxiliary head are "
            f"built for one size); got input_shape={input_shape!r}.",
            key="input_shape",
        )
    for side in (height, width):
        if side is not None and side < MIN_SIZE:
            raise ConfigError(
                f"Input size must be at least {MIN_SIZE}x{MIN_SIZE}; "
                f"got input_shape={input_shape!r}.",
                key="input_shape",
            )
    return input_shape


def _check_aux_input(input_shape):
    side = min(input_shape[:2])
    size = feature_map_size(side, 16)
    if size < AUX_POOL_SIZE:
        raise ConfigError(
            f"aux_logits=True needs the 17x17 stage to be at least {AUX_POOL_SIZE}x"
            f"{AUX_POOL_SIZE} for the head's pooling; an input of {side} gives {size}x{size}. "
            f"Use inputs of at least {MIN_AUX_INPUT_SIZE}x{MIN_AUX_INPUT_SIZE}, or "
            "aux_logits=False.",
            key="aux_logits",
        )


def _check_depths(spec, depths):
    """`depths` (blocks in stages A, B, C) as a tuple of ints within the network's limits."""
    network = spec.factory.__name__
    if not isinstance(depths, (tuple, list)) or len(depths) != 3 or not all(map(is_int, depths)):
        raise ConfigError(
            f"{network}: depths must be three integers (A, B, C), got {depths!r}.", key="depths"
        )
    for index, (depth, minimum) in enumerate(zip(depths, spec.min_depths)):
        if depth < minimum:
            raise ConfigError(
                f"{network}: depths[{index}] (stage {'ABC'[index]}) must be at least "
                f"{minimum}, got {depth}.",
                key="depths",
            )
    if spec.max_depth is not None and max(depths) > spec.max_depth:
        raise ConfigError(
            f"{network}: each of depths must be at most {spec.max_depth}, got {tuple(depths)}.",
            key="depths",
        )
    return tuple(depths)


def _check_residual_scales(spec, residual_scale):
    """One scale per block type (A, B, C) from a float or three; None for a network without
    residual blocks (which refuses a scale)."""
    if not spec.residual:
        if residual_scale is not None:
            raise ConfigError(
                f"{spec.name} has no residual connections: residual_scale must be left out, "
                f"got {residual_scale!r}.",
                key="residual_scale",
            )
        return None
    if residual_scale is None:
        return spec.residual_scales
    if isinstance(residual_scale, (tuple, list)):
        if len(residual_scale) != 3:
            raise ConfigError(
                "residual_scale must be one number or three (for blocks A, B, C), "
                f"got {residual_scale!r}.",
                key="residual_scale",
            )
        return tuple(
            check_residual_scale(value, f"residual_scale[{i}] (block {'ABC'[i]})")
            for i, value in enumerate(residual_scale)
        )
    return (check_residual_scale(residual_scale),) * 3


def _check_embedding(spec, embedding_size, aux_logits):
    if embedding_size is None:
        return
    if not spec.embedding:
        raise ConfigError(
            f"{spec.name} has no embedding head: embedding_size must be left out, "
            f"got {embedding_size!r}.",
            key="embedding_size",
        )
    check(
        is_int(embedding_size, minimum=1),
        "embedding_size",
        "a positive integer or None",
        embedding_size,
    )
    if aux_logits:
        raise ConfigError(
            "aux_logits=True is a classifier aid; it does not combine with embedding_size.",
            key="aux_logits",
        )


def _check_head_fits_weights(spec, weights, include_top, classes, embedding_size):
    """Published weights fill the head they were trained with, or no head (include_top=False)."""
    pretrained = spec.weights.get(weights) if isinstance(weights, str) else None
    if pretrained is None or not include_top:
        return
    if pretrained.embedding_size is not None:
        if embedding_size != pretrained.embedding_size:
            raise ConfigError(
                f"weights={weights!r} hold FaceNet's {pretrained.embedding_size}-d embedding "
                "head: pass that embedding_size, or include_top=False. "
                f"Received: embedding_size={embedding_size!r}.",
                key="embedding_size",
            )
    elif classes != 1000:
        raise ConfigError(
            f'If using `weights="{weights}"` with `include_top=True`, `classes` should be 1000. '
            f"Received: classes={classes}.",
            key="classes",
        )


def make_input(args):
    """The Keras input tensor of the model, from the checked `Arguments`."""
    if keras.config.image_data_format() != "channels_last":
        raise ConfigError(
            "keras_inception builds channels_last models only; "
            f"keras.config.image_data_format() is {keras.config.image_data_format()!r}.",
            key="image_data_format",
        )
    if args.input_tensor is None:
        return layers.Input(shape=args.input_shape)
    if keras.backend.is_keras_tensor(args.input_tensor):
        return args.input_tensor
    return layers.Input(tensor=args.input_tensor, shape=args.input_shape)


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


def build(spec, body, args, *, aux_names, top=None):
    """Run the network's `body` on the input, put the head on and load the weights.

    `body(x)` returns the features before global pooling and the 17x17 features the auxiliary
    head reads. `top(features)`, when given, replaces the ImageNet classifier (FaceNet's
    embedding head).
    """
    img_input = make_input(args)
    features, pre_aux = body(img_input)
    if not args.include_top:
        outputs = feature_pooling(features, args.pooling)
    elif top is not None:
        outputs = top(features)
    else:
        outputs = classifier(features, args.classes, args.classifier_activation, args.dropout_rate)
    if args.include_top and args.aux_logits:
        aux = aux_classifier(pre_aux, args.classes, args.classifier_activation, aux_names)
        outputs = [outputs, aux]
    inputs = (
        img_input if args.input_tensor is None else keras.utils.get_source_inputs(args.input_tensor)
    )
    model = keras.Model(inputs, outputs, name=args.name)
    if args.weights in spec.weights:
        # Published weights come from other formats: converted strictly, the heads this
        # configuration leaves out (top, auxiliary head) dropped.
        registry.load_pretrained(model, spec, args.weights)
    elif args.weights is not None:
        load_weights(model, args.weights)
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
