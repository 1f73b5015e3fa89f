"""Inception-v4 (Szegedy et al. 2016), layer for layer as TF-slim builds it.

A pure Inception network (no residual connections): the paper's figure-3 stem, 4 Inception-A,
Reduction-A, 7 Inception-B, Reduction-B and 3 Inception-C blocks.
"""

from keras_inception.models import application
from keras_inception.models.blocks import (
    inception_a,
    inception_b,
    inception_c,
    inception_v4_reduction_b,
    inception_v4_stem,
    reduction_a,
)
from keras_inception.weights.registry import NAMED_WEIGHTS

DEPTHS = (4, 7, 3)
REDUCTION_A_WIDTHS = (192, 224, 256, 384)
AUX_NAMES = ("AvgPool_1a_5x5", "Conv2d_1b_1x1", "Conv2d_2a", "Aux_logits")
# Slim names repeated blocks by letter: Mixed_5b, Mixed_5c, ... up to Mixed_5z.
MAX_DEPTH = ord("z") - ord("b") + 1


def _stage(x, block, depth, prefix):
    for i in range(depth):
        x = block(x, f"{prefix}{chr(ord('b') + i)}")
    return x


@application.with_arguments_doc
def InceptionV4(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="inception_v4",
    *,
    depths=DEPTHS,
    dropout_rate=0.2,
    aux_logits=False,
):
    """Instantiate Inception-v4 with the keras.applications arguments.

    Args:
        {arguments}
        depths: Inception-A, -B and -C blocks per stage (at most 25 each, slim's naming).
    """
    depths = application.check_depths(depths, (0, 0, 0), "InceptionV4")
    if max(depths) > MAX_DEPTH:
        raise ValueError(f"InceptionV4: each of depths must be at most {MAX_DEPTH}, got {depths}.")

    def body(x):
        x = inception_v4_stem(x)
        x = _stage(x, inception_a, depths[0], "Mixed_5")
        x = reduction_a(x, *REDUCTION_A_WIDTHS)
        pre_aux = x = _stage(x, inception_b, depths[1], "Mixed_6")
        x = inception_v4_reduction_b(x)
        return _stage(x, inception_c, depths[2], "Mixed_7"), pre_aux

    return application.build(
        body,
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        dropout_rate=dropout_rate,
        aux_logits=aux_logits,
        aux_names=AUX_NAMES,
        named_weights=NAMED_WEIGHTS["inception_v4"],
    )
