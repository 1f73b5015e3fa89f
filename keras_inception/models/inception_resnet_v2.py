"""Inception-ResNet-v2 (Szegedy et al. 2016), as TF-slim, keras.applications and timm build it.

The public implementations differ from the paper's figures: 10/20/10 blocks instead of 5/10/5, an
Inception-v3-style stem with `Mixed_5b` instead of the Inception-v4 stem, and a 1x1 conv to 1536
channels before pooling. All released weights are for this version (see docs/architectures.md).
The weighted layers are created in keras.applications' order, so its weight files load as they are.
"""

from keras_inception.models import application
from keras_inception.models.blocks import (
    conv_bn,
    inception_resnet_stem,
    inception_resnet_v2_mixed_5b,
    max_pool,
    residual_stages,
)
from keras_inception.weights.registry import NAMED_WEIGHTS

DEPTHS = (10, 20, 10)
RESIDUAL_SCALES = (0.17, 0.10, 0.20)
BLOCK_WIDTHS = (
    (32, 32, 32, 32, 48, 64),  # block35: Branch_0; Branch_1 x2; Branch_2 x3
    (192, 128, 160, 192),  # block17: Branch_0; Branch_1 x3
    (192, 192, 224, 256),  # block8
)
REDUCTION_WIDTHS = ((256, 256, 384, 384), (384, 288, 288, 320))
AUX_NAMES = ("Conv2d_1a_3x3", "Conv2d_1b_1x1", "Conv2d_2a_5x5", "Logits")


@application.with_arguments_doc
def InceptionResNetV2(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="inception_resnet_v2",
    *,
    residual_scale=RESIDUAL_SCALES,
    depths=DEPTHS,
    dropout_rate=0.2,
    aux_logits=False,
):
    """Instantiate Inception-ResNet-v2 with the keras.applications arguments.

    Args:
        {arguments}
        residual_scale: the factor on the residual branch before the addition, one number or one
            per block type (A, B, C), each in (0, 1]. The final C block always uses 1.0.
        depths: blocks per stage (A, B, C), the final unscaled C block included (so C >= 1).
    """
    scales = application.check_residual_scales(residual_scale)
    depths = application.check_depths(depths, (0, 0, 1), "InceptionResNetV2")

    def body(x):
        x = inception_resnet_stem(x)
        x = max_pool(x, "MaxPool_5a_3x3")
        x = inception_resnet_v2_mixed_5b(x)
        x, pre_aux = residual_stages(x, depths, scales, BLOCK_WIDTHS, REDUCTION_WIDTHS)
        return conv_bn(x, 1536, 1, "Conv2d_7b_1x1"), pre_aux

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
        named_weights=NAMED_WEIGHTS["inception_resnet_v2"],
    )
