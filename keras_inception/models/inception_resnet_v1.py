"""Inception-ResNet-v1 (Szegedy et al. 2016), as FaceNet's slim code and facenet-pytorch build it.

The cheaper residual network of the paper (about Inception-v3's cost). FaceNet's version, whose
weights are the public ones, uses an Inception-v3-style stem, 5/10/5 scaled blocks plus a final
unscaled C block, and an embedding head (bottleneck dense, BN, L2 normalisation) for faces.
"""

from keras import layers

from keras_inception.models import application
from keras_inception.models.blocks import (
    BATCH_NORM_EPSILON,
    conv_bn,
    inception_resnet_stem,
    residual_stages,
    scope,
)
from keras_inception.weights.registry import NAMED_WEIGHTS

# The C stage counts FaceNet's 5 scaled blocks and its final unscaled `Block8`.
DEPTHS = (5, 10, 6)
RESIDUAL_SCALES = (0.17, 0.10, 0.20)
BLOCK_WIDTHS = ((32,) * 6, (128,) * 4, (192,) * 4)
REDUCTION_WIDTHS = ((192, 192, 256, 384), (384, 256, 256, 256))
# FaceNet has no auxiliary head; ours follows IR-v2's, which has the same B stage.
AUX_NAMES = ("Conv2d_1a_3x3", "Conv2d_1b_1x1", "Conv2d_2a_5x5", "Logits")


def embedding_head(features, embedding_size, dropout_rate):
    """FaceNet's head: average pool -> dropout -> bias-free dense -> BN -> L2 normalisation.

    The unit-length embedding is what face verification compares (by distance or dot product).
    """
    x = layers.GlobalAveragePooling2D(name=scope("Logits", "AvgPool"))(features)
    if dropout_rate:
        x = layers.Dropout(dropout_rate, name=scope("Logits", "Dropout"))(x)
    x = layers.Dense(embedding_size, use_bias=False, dtype="float32", name="Bottleneck")(x)
    x = layers.BatchNormalization(
        scale=False,
        epsilon=BATCH_NORM_EPSILON,
        dtype="float32",
        name=scope("Bottleneck", "BatchNorm"),
    )(x)
    return layers.UnitNormalization(axis=-1, dtype="float32", name="embeddings")(x)


@application.with_arguments_doc
def InceptionResNetV1(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="inception_resnet_v1",
    *,
    residual_scale=RESIDUAL_SCALES,
    depths=DEPTHS,
    dropout_rate=0.2,
    aux_logits=False,
    embedding_size=None,
):
    """Instantiate Inception-ResNet-v1 with the keras.applications arguments.

    Args:
        {arguments}
        residual_scale: the factor on the residual branch before the addition, one number or one
            per block type (A, B, C), each in (0, 1]. The final C block always uses 1.0.
        depths: blocks per stage (A, B, C), the final unscaled C block included (so C >= 1):
            FaceNet's 5 + 10 + (5 + 1).
        embedding_size: with `include_top`, replace the classifier by FaceNet's L2-normalised
            embedding head of this size (128, or 512 for the 2018 releases); `classes` and
            `classifier_activation` are then unused.
    """
    scales = application.check_residual_scales(residual_scale)
    depths = application.check_depths(depths, (0, 0, 1), "InceptionResNetV1")
    if embedding_size is not None and (
        isinstance(embedding_size, bool)
        or not isinstance(embedding_size, int)
        or embedding_size < 1
    ):
        raise ValueError(
            f"embedding_size must be a positive integer or None, got {embedding_size!r}."
        )
    if embedding_size is not None and aux_logits:
        raise ValueError(
            "aux_logits=True is a classifier aid; it does not combine with embedding_size."
        )
    facenet = (
        NAMED_WEIGHTS["inception_resnet_v1"].get(weights) if isinstance(weights, str) else None
    )
    if facenet and include_top and embedding_size != facenet.model_config["embedding_size"]:
        raise ValueError(
            f"weights={weights!r} hold FaceNet's {facenet.model_config['embedding_size']}-d "
            "embedding head: pass that embedding_size, or include_top=False. "
            f"Received: embedding_size={embedding_size!r}."
        )

    def body(x):
        x = inception_resnet_stem(x)
        x = conv_bn(x, 256, 3, "Conv2d_4b_3x3", strides=2, padding="valid")
        return residual_stages(x, depths, scales, BLOCK_WIDTHS, REDUCTION_WIDTHS)

    def top(features):
        return embedding_head(features, embedding_size, dropout_rate)

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
        named_weights=NAMED_WEIGHTS["inception_resnet_v1"],
        top=None if embedding_size is None else top,
    )
