"""Inception-v4 (Szegedy et al. 2016), layer for layer as TF-slim builds it.

A pure Inception network (no residual connections): the paper's figure-3 stem, 4 Inception-A,
Reduction-A, 7 Inception-B, Reduction-B and 3 Inception-C blocks.
"""

from keras_inception.models import application, registry
from keras_inception.models.blocks import (
    inception_a,
    inception_b,
    inception_c,
    inception_v4_reduction_b,
    inception_v4_stem,
    reduction_a,
)

DEPTHS = (4, 7, 3)
REDUCTION_A_WIDTHS = (192, 224, 256, 384)
AUX_NAMES = ("AvgPool_1a_5x5", "Conv2d_1b_1x1", "Conv2d_2a", "Aux_logits")
# Slim names repeated blocks by letter: Mixed_5b, Mixed_5c, ... up to Mixed_5z.
BLOCK_LETTERS = "bcdefghijklmnopqrstuvwxyz"


def _stage(x, block, depth, prefix):
    for letter in BLOCK_LETTERS[:depth]:
        x = block(x, f"{prefix}{letter}")
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
    args = application.check_arguments(SPEC, **locals())  # every argument, checked up front
    depth_a, depth_b, depth_c = args.depths

    def body(x):
        x = inception_v4_stem(x)
        x = _stage(x, inception_a, depth_a, "Mixed_5")
        x = reduction_a(x, *REDUCTION_A_WIDTHS)
        pre_aux = x = _stage(x, inception_b, depth_b, "Mixed_6")
        x = inception_v4_reduction_b(x)
        return _stage(x, inception_c, depth_c, "Mixed_7"), pre_aux

    return application.build(
        SPEC,
        body,
        args,
        aux_names=AUX_NAMES,
    )


def _stage_scopes(prefix):
    return tuple(prefix + letter for letter in "a" + BLOCK_LETTERS)


SPEC = registry.register(
    registry.NetworkSpec(
        name="inception_v4",
        title="Inception-v4",
        factory=InceptionV4,
        slim_scope="InceptionV4",
        depths=DEPTHS,
        max_depth=len(BLOCK_LETTERS),
        feature_scopes={
            4: ("Mixed_4a",),
            8: _stage_scopes("Mixed_5"),
            16: _stage_scopes("Mixed_6"),
            32: _stage_scopes("Mixed_7"),
        },
        weights={
            # The authors' slim checkpoint (1001 classes, with the auxiliary head).
            "imagenet": registry.PretrainedWeights(
                url="http://download.tensorflow.org/models/inception_v4_2016_09_09.tar.gz",
                source_format="slim",
                model_config={"aux_logits": True},
                converted_name="inception_v4_2016_09_09.weights.h5",
            ),
        },
    )
)
