"""Inception-ResNet-v2 (Szegedy et al. 2016), as TF-slim, keras.applications and timm build it.

The public implementations differ from the paper's figures: 10/20/10 blocks instead of 5/10/5, an
Inception-v3-style stem with `Mixed_5b` instead of the Inception-v4 stem, and a 1x1 conv to 1536
channels before pooling. All released weights are for this version (see docs/architectures.md).
The weighted layers are created in keras.applications' order, so its weight files load as they are.
"""

from keras_inception.models import application, registry
from keras_inception.models.blocks import (
    conv_bn,
    inception_resnet_stem,
    inception_resnet_v2_mixed_5b,
    max_pool,
    residual_stages,
)

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
    args = application.check_arguments(SPEC, **locals())  # every argument, checked up front

    def body(x):
        x = inception_resnet_stem(x)
        x = max_pool(x, "MaxPool_5a_3x3")
        x = inception_resnet_v2_mixed_5b(x)
        x, pre_aux = residual_stages(
            x, args.depths, args.residual_scales, BLOCK_WIDTHS, REDUCTION_WIDTHS
        )
        return conv_bn(x, 1536, 1, "Conv2d_7b_1x1"), pre_aux

    return application.build(
        SPEC,
        body,
        args,
        aux_names=AUX_NAMES,
    )


SPEC = registry.register(
    registry.NetworkSpec(
        name="inception_resnet_v2",
        title="Inception-ResNet-v2",
        factory=InceptionResNetV2,
        slim_scope="InceptionResnetV2",
        residual_scales=RESIDUAL_SCALES,
        depths=DEPTHS,
        min_depths=(0, 0, 1),
        feature_scopes={
            4: ("Conv2d_4a_3x3",),
            8: ("MaxPool_5a_3x3", "Mixed_5b", "Repeat"),
            16: ("Mixed_6a", "Repeat_1"),
            32: ("Conv2d_7b_1x1",),
        },
        weights={
            # keras.applications' file; URL and md5 as in keras/src/applications/
            # inception_resnet_v2.py (a test checks them against it).
            "imagenet": registry.PretrainedWeights(
                url="https://storage.googleapis.com/tensorflow/keras-applications/"
                "inception_resnet_v2/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5",
                md5="e693bd0210a403b3192acc6073ad2e96",
                source_format="keras-applications",
            ),
        },
    )
)
