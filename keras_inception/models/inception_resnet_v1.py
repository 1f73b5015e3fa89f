"""Inception-ResNet-v1 (Szegedy et al. 2016), as FaceNet's slim code and facenet-pytorch build it.

The cheaper residual network of the paper (about Inception-v3's cost). FaceNet's version, whose
weights are the public ones, uses an Inception-v3-style stem, 5/10/5 scaled blocks plus a final
unscaled C block, and an embedding head (bottleneck dense, BN, L2 normalisation) for faces.
"""

import keras
from keras import layers

from keras_inception.models import application, registry
from keras_inception.models.blocks import (
    BATCH_NORM_EPSILON,
    conv_bn,
    inception_resnet_stem,
    residual_stages,
    scope,
)

# The C stage counts FaceNet's 5 scaled blocks and its final unscaled `Block8`.
DEPTHS = (5, 10, 6)
RESIDUAL_SCALES = (0.17, 0.10, 0.20)
BLOCK_WIDTHS = ((32,) * 6, (128,) * 4, (192,) * 4)
REDUCTION_WIDTHS = ((192, 192, 256, 384), (384, 256, 256, 256))
# FaceNet has no auxiliary head; ours follows IR-v2's, which has the same B stage.
AUX_NAMES = ("Conv2d_1a_3x3", "Conv2d_1b_1x1", "Conv2d_2a_5x5", "Logits")
# FaceNet's identity classifier, slim's `Logits` scope in train_softmax.py (the ImageNet
# classifiers' layer is `Logits__Logits`), and the bottleneck output it reads.
IDENTITY_LOGITS = "Logits"
PRELOGITS = scope("Bottleneck", "BatchNorm")


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
        name=PRELOGITS,
    )(x)
    return _unit_embeddings(x)


def _unit_embeddings(prelogits):
    return layers.UnitNormalization(axis=-1, dtype="float32", name="embeddings")(prelogits)


def with_identity_classifier(model, classes):
    """FaceNet's softmax training (facenet's train_softmax.py): a new dense softmax `Logits`
    over `classes` training identities on the bottleneck before its L2 normalisation (facenet's
    prelogits), trained with cross-entropy. `embedding_model` drops it again."""
    logits = layers.Dense(classes, activation="softmax", dtype="float32", name=IDENTITY_LOGITS)
    return keras.Model(model.input, logits(model.get_layer(PRELOGITS).output), name=model.name)


def is_identity_classifier(model):
    return any(layer.name == IDENTITY_LOGITS for layer in model.layers)


def embedding_model(model):
    """The embedding model inside an identity classifier: the same layers and weights up to the
    bottleneck, L2-normalised to the `embeddings` output, without the classifier."""
    prelogits = model.get_layer(PRELOGITS).output
    return keras.Model(model.input, _unit_embeddings(prelogits), name=model.name)


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
    args = application.check_arguments(SPEC, **locals())  # every argument, checked up front

    def body(x):
        x = inception_resnet_stem(x)
        x = conv_bn(x, 256, 3, "Conv2d_4b_3x3", strides=2, padding="valid")
        return residual_stages(x, args.depths, args.residual_scales, BLOCK_WIDTHS, REDUCTION_WIDTHS)

    def top(features):
        return embedding_head(features, embedding_size, dropout_rate)

    return application.build(
        SPEC,
        body,
        args,
        aux_names=AUX_NAMES,
        top=None if embedding_size is None else top,
    )


FACENET_PYTORCH_RELEASE = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"


def _facenet_pytorch_weights(stem):
    """facenet-pytorch's 512-d models, trained on 160x160 aligned faces scaled by
    (x - 127.5) / 128."""
    return registry.PretrainedWeights(
        url=f"{FACENET_PYTORCH_RELEASE}{stem}.pt",
        source_format="pytorch",
        model_config={"embedding_size": 512},
        converted_name=f"{stem}.weights.h5",
        input_size=160,
        crop_fraction=1.0,
        preprocessing="fixed_standardization",
    )


SPEC = registry.register(
    registry.NetworkSpec(
        name="inception_resnet_v1",
        title="Inception-ResNet-v1",
        factory=InceptionResNetV1,
        slim_scope="InceptionResnetV1",
        residual_scales=RESIDUAL_SCALES,
        depths=DEPTHS,
        min_depths=(0, 0, 1),
        embedding=True,
        feature_scopes={
            4: ("Conv2d_4a_3x3",),
            8: ("Conv2d_4b_3x3", "Repeat"),
            16: ("Mixed_6a", "Repeat_1"),
            32: ("Mixed_7a", "Repeat_2", "Block8"),
        },
        weights={
            "facenet-vggface2": _facenet_pytorch_weights("20180402-114759-vggface2"),
            "facenet-casia": _facenet_pytorch_weights("20180408-102900-casia-webface"),
        },
    )
)
