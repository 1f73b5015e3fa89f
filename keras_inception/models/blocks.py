"""Building blocks shared by Inception-v4, Inception-ResNet-v1 and Inception-ResNet-v2.

Every block is written once and takes its widths as arguments; the networks differ only in the
numbers they pass. Layer names are TF-slim's variable scopes with `/` written as `__` (Keras forbids
`/` and the PyTorch backend forbids `.`), so `Mixed_6a__Branch_1__Conv2d_0b_3x3` is slim's
`Mixed_6a/Branch_1/Conv2d_0b_3x3`. That makes the model readable next to the paper's figures and
gives the weight converters one rule instead of a table. The output layer of each block is named
after the block itself, so `model.get_layer("Mixed_6a").output` is slim's end point of that name.

Branches are created and concatenated in slim's Branch_0, 1, 2, 3 order and kernels keep slim's
orientation (1x7 before 7x1 where slim does so): checkpoints depend on both.
"""

from keras import layers

from keras_inception.models.layers import BatchNormalization, ResidualScale

SCOPE_SEPARATOR = "__"
BATCH_NORM_EPSILON = 1e-3
# The heads on top of the backbone: the classifier, slim's auxiliary classifier and FaceNet's
# embedding. Published weights may carry heads a model leaves out, and fine-tuning replaces them.
HEAD_SCOPES = ("Logits", "AuxLogits", "Bottleneck")
CLASSIFIER_SCOPES = ("Logits", "AuxLogits")


def scope(*parts):
    """Join slim scope parts into one Keras layer name."""
    return SCOPE_SEPARATOR.join(parts)


def slim_scope(layer_name):
    """The slim scope a Keras layer name stands for (`Mixed_6a/Branch_1/Conv2d_0b_3x3`)."""
    return layer_name.replace(SCOPE_SEPARATOR, "/")


def is_head(layer_name):
    """Whether the layer belongs to one of the `HEAD_SCOPES`."""
    return slim_scope(layer_name).split("/", 1)[0] in HEAD_SCOPES


def conv_bn(x, filters, kernel_size, name, strides=1, padding="same"):
    """Conv2D (no bias) -> BatchNorm (no gamma, epsilon 1e-3) -> ReLU, as every conv in slim.

    BN has no scale because a ReLU follows it: a per-channel gain would be absorbed by the next
    convolution, so slim, keras.applications and the released checkpoints all leave it out.
    """
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, use_bias=False, name=name
    )(x)
    x = BatchNormalization(scale=False, epsilon=BATCH_NORM_EPSILON, name=scope(name, "BatchNorm"))(
        x
    )
    return layers.Activation("relu", name=scope(name, "Relu"))(x)


def max_pool(x, name):
    """The 3x3 stride-2 VALID max pool of every stem and reduction."""
    return layers.MaxPooling2D(3, strides=2, padding="valid", name=name)(x)


def avg_pool(x, name):
    """The 3x3 stride-1 SAME average pool of the Inception branches (padding not counted)."""
    return layers.AveragePooling2D(3, strides=1, padding="same", name=name)(x)


def concat(branches, name):
    return layers.Concatenate(axis=-1, name=name)(branches)


# --------------------------------------------------------------------------- stems


def stem_convs(x):
    """The three convolutions every network starts with: 299 -> 147x147x64."""
    x = conv_bn(x, 32, 3, "Conv2d_1a_3x3", strides=2, padding="valid")
    x = conv_bn(x, 32, 3, "Conv2d_2a_3x3", padding="valid")
    return conv_bn(x, 64, 3, "Conv2d_2b_3x3")


def inception_v4_stem(x):
    """Inception-v4's stem (paper figure 3): 299 -> 35x35x384, widening through parallel branches."""
    x = stem_convs(x)
    x = concat(
        [
            max_pool(x, scope("Mixed_3a", "Branch_0", "MaxPool_0a_3x3")),
            conv_bn(x, 96, 3, scope("Mixed_3a", "Branch_1", "Conv2d_0a_3x3"), 2, "valid"),
        ],
        "Mixed_3a",
    )
    branch_0 = conv_bn(x, 64, 1, scope("Mixed_4a", "Branch_0", "Conv2d_0a_1x1"))
    branch_0 = conv_bn(branch_0, 96, 3, scope("Mixed_4a", "Branch_0", "Conv2d_1a_3x3"), 1, "valid")
    branch_1 = conv_bn(x, 64, 1, scope("Mixed_4a", "Branch_1", "Conv2d_0a_1x1"))
    branch_1 = conv_bn(branch_1, 64, (1, 7), scope("Mixed_4a", "Branch_1", "Conv2d_0b_1x7"))
    branch_1 = conv_bn(branch_1, 64, (7, 1), scope("Mixed_4a", "Branch_1", "Conv2d_0c_7x1"))
    branch_1 = conv_bn(branch_1, 96, 3, scope("Mixed_4a", "Branch_1", "Conv2d_1a_3x3"), 1, "valid")
    x = concat([branch_0, branch_1], "Mixed_4a")
    return concat(
        [
            conv_bn(x, 192, 3, scope("Mixed_5a", "Branch_0", "Conv2d_1a_3x3"), 2, "valid"),
            max_pool(x, scope("Mixed_5a", "Branch_1", "MaxPool_1a_3x3")),
        ],
        "Mixed_5a",
    )


def inception_resnet_stem(x):
    """The Inception-v3-style stem both public Inception-ResNets use: 299 -> 71x71x192."""
    x = stem_convs(x)
    x = max_pool(x, "MaxPool_3a_3x3")
    x = conv_bn(x, 80, 1, "Conv2d_3b_1x1", padding="valid")
    return conv_bn(x, 192, 3, "Conv2d_4a_3x3", padding="valid")


def inception_resnet_v2_mixed_5b(x):
    """The Inception block that widens IR-v2's stem output to 35x35x320."""
    name = "Mixed_5b"
    branch_0 = conv_bn(x, 96, 1, scope(name, "Branch_0", "Conv2d_1x1"))
    branch_1 = conv_bn(x, 48, 1, scope(name, "Branch_1", "Conv2d_0a_1x1"))
    branch_1 = conv_bn(branch_1, 64, 5, scope(name, "Branch_1", "Conv2d_0b_5x5"))
    branch_2 = conv_bn(x, 64, 1, scope(name, "Branch_2", "Conv2d_0a_1x1"))
    branch_2 = conv_bn(branch_2, 96, 3, scope(name, "Branch_2", "Conv2d_0b_3x3"))
    branch_2 = conv_bn(branch_2, 96, 3, scope(name, "Branch_2", "Conv2d_0c_3x3"))
    branch_3 = avg_pool(x, scope(name, "Branch_3", "AvgPool_0a_3x3"))
    branch_3 = conv_bn(branch_3, 64, 1, scope(name, "Branch_3", "Conv2d_0b_1x1"))
    return concat([branch_0, branch_1, branch_2, branch_3], name)


# --------------------------------------------------------------------------- Inception-v4 blocks


def inception_a(x, name):
    """Inception-v4's 35x35 block (paper figure 4)."""
    branch_0 = conv_bn(x, 96, 1, scope(name, "Branch_0", "Conv2d_0a_1x1"))
    branch_1 = conv_bn(x, 64, 1, scope(name, "Branch_1", "Conv2d_0a_1x1"))
    branch_1 = conv_bn(branch_1, 96, 3, scope(name, "Branch_1", "Conv2d_0b_3x3"))
    branch_2 = conv_bn(x, 64, 1, scope(name, "Branch_2", "Conv2d_0a_1x1"))
    branch_2 = conv_bn(branch_2, 96, 3, scope(name, "Branch_2", "Conv2d_0b_3x3"))
    branch_2 = conv_bn(branch_2, 96, 3, scope(name, "Branch_2", "Conv2d_0c_3x3"))
    branch_3 = avg_pool(x, scope(name, "Branch_3", "AvgPool_0a_3x3"))
    branch_3 = conv_bn(branch_3, 96, 1, scope(name, "Branch_3", "Conv2d_0b_1x1"))
    return concat([branch_0, branch_1, branch_2, branch_3], name)


def inception_b(x, name):
    """Inception-v4's 17x17 block (paper figure 5): 7x7 convolutions factorised into 1x7 and 7x1."""
    branch_0 = conv_bn(x, 384, 1, scope(name, "Branch_0", "Conv2d_0a_1x1"))
    branch_1 = conv_bn(x, 192, 1, scope(name, "Branch_1", "Conv2d_0a_1x1"))
    branch_1 = conv_bn(branch_1, 224, (1, 7), scope(name, "Branch_1", "Conv2d_0b_1x7"))
    branch_1 = conv_bn(branch_1, 256, (7, 1), scope(name, "Branch_1", "Conv2d_0c_7x1"))
    branch_2 = conv_bn(x, 192, 1, scope(name, "Branch_2", "Conv2d_0a_1x1"))
    branch_2 = conv_bn(branch_2, 192, (7, 1), scope(name, "Branch_2", "Conv2d_0b_7x1"))
    branch_2 = conv_bn(branch_2, 224, (1, 7), scope(name, "Branch_2", "Conv2d_0c_1x7"))
    branch_2 = conv_bn(branch_2, 224, (7, 1), scope(name, "Branch_2", "Conv2d_0d_7x1"))
    branch_2 = conv_bn(branch_2, 256, (1, 7), scope(name, "Branch_2", "Conv2d_0e_1x7"))
    branch_3 = avg_pool(x, scope(name, "Branch_3", "AvgPool_0a_3x3"))
    branch_3 = conv_bn(branch_3, 128, 1, scope(name, "Branch_3", "Conv2d_0b_1x1"))
    return concat([branch_0, branch_1, branch_2, branch_3], name)


def _split_1x3_3x1(x, name, first, second):
    """Two parallel 1x3 and 3x1 convolutions on the same input, concatenated (Inception-C)."""
    return concat(
        [conv_bn(x, 256, (1, 3), scope(name, first)), conv_bn(x, 256, (3, 1), scope(name, second))],
        scope(name, "Concat"),
    )


def inception_c(x, name):
    """Inception-v4's 8x8 block (paper figure 6): the widest, with split 1x3 / 3x1 outputs."""
    branch_0 = conv_bn(x, 256, 1, scope(name, "Branch_0", "Conv2d_0a_1x1"))
    branch_1 = conv_bn(x, 384, 1, scope(name, "Branch_1", "Conv2d_0a_1x1"))
    branch_1 = _split_1x3_3x1(branch_1, scope(name, "Branch_1"), "Conv2d_0b_1x3", "Conv2d_0c_3x1")
    branch_2 = conv_bn(x, 384, 1, scope(name, "Branch_2", "Conv2d_0a_1x1"))
    branch_2 = conv_bn(branch_2, 448, (3, 1), scope(name, "Branch_2", "Conv2d_0b_3x1"))
    branch_2 = conv_bn(branch_2, 512, (1, 3), scope(name, "Branch_2", "Conv2d_0c_1x3"))
    branch_2 = _split_1x3_3x1(branch_2, scope(name, "Branch_2"), "Conv2d_0d_1x3", "Conv2d_0e_3x1")
    branch_3 = avg_pool(x, scope(name, "Branch_3", "AvgPool_0a_3x3"))
    branch_3 = conv_bn(branch_3, 256, 1, scope(name, "Branch_3", "Conv2d_0b_1x1"))
    return concat([branch_0, branch_1, branch_2, branch_3], name)


def inception_v4_reduction_b(x, name="Mixed_7a"):
    """Inception-v4's 17x17 -> 8x8 reduction (paper figure 8)."""
    branch_0 = conv_bn(x, 192, 1, scope(name, "Branch_0", "Conv2d_0a_1x1"))
    branch_0 = conv_bn(branch_0, 192, 3, scope(name, "Branch_0", "Conv2d_1a_3x3"), 2, "valid")
    branch_1 = conv_bn(x, 256, 1, scope(name, "Branch_1", "Conv2d_0a_1x1"))
    branch_1 = conv_bn(branch_1, 256, (1, 7), scope(name, "Branch_1", "Conv2d_0b_1x7"))
    branch_1 = conv_bn(branch_1, 320, (7, 1), scope(name, "Branch_1", "Conv2d_0c_7x1"))
    branch_1 = conv_bn(branch_1, 320, 3, scope(name, "Branch_1", "Conv2d_1a_3x3"), 2, "valid")
    branch_2 = max_pool(x, scope(name, "Branch_2", "MaxPool_1a_3x3"))
    return concat([branch_0, branch_1, branch_2], name)


# --------------------------------------------------------------------------- shared reductions


def reduction_a(x, k, l, m, n, name="Mixed_6a"):  # noqa: E741 (the paper's names)
    """The 35x35 -> 17x17 reduction of all three networks (paper figure 7, its k, l, m, n)."""
    branch_0 = conv_bn(x, n, 3, scope(name, "Branch_0", "Conv2d_1a_3x3"), 2, "valid")
    branch_1 = conv_bn(x, k, 1, scope(name, "Branch_1", "Conv2d_0a_1x1"))
    branch_1 = conv_bn(branch_1, l, 3, scope(name, "Branch_1", "Conv2d_0b_3x3"))
    branch_1 = conv_bn(branch_1, m, 3, scope(name, "Branch_1", "Conv2d_1a_3x3"), 2, "valid")
    branch_2 = max_pool(x, scope(name, "Branch_2", "MaxPool_1a_3x3"))
    return concat([branch_0, branch_1, branch_2], name)


def inception_resnet_reduction_b(x, widths, name="Mixed_7a"):
    """The Inception-ResNets' 17x17 -> 8x8 reduction; `widths` = the four 3x3 conv widths in order."""
    width_0, width_1, width_2a, width_2b = widths
    branch_0 = conv_bn(x, 256, 1, scope(name, "Branch_0", "Conv2d_0a_1x1"))
    branch_0 = conv_bn(branch_0, width_0, 3, scope(name, "Branch_0", "Conv2d_1a_3x3"), 2, "valid")
    branch_1 = conv_bn(x, 256, 1, scope(name, "Branch_1", "Conv2d_0a_1x1"))
    branch_1 = conv_bn(branch_1, width_1, 3, scope(name, "Branch_1", "Conv2d_1a_3x3"), 2, "valid")
    branch_2 = conv_bn(x, 256, 1, scope(name, "Branch_2", "Conv2d_0a_1x1"))
    branch_2 = conv_bn(branch_2, width_2a, 3, scope(name, "Branch_2", "Conv2d_0b_3x3"))
    branch_2 = conv_bn(branch_2, width_2b, 3, scope(name, "Branch_2", "Conv2d_1a_3x3"), 2, "valid")
    branch_3 = max_pool(x, scope(name, "Branch_3", "MaxPool_1a_3x3"))
    return concat([branch_0, branch_1, branch_2, branch_3], name)


# --------------------------------------------------------------------------- residual blocks


def _residual(x, branches, scale, activation, name):
    """Concatenate the branches, project back to the input width with a linear 1x1 conv (bias, no
    BN), add to the input scaled by `scale`, then ReLU unless `activation` is False.

    No BN follows the sum: the paper keeps BN off the residual path to save memory.
    """
    mixed = concat(branches, scope(name, "Concat"))
    up = layers.Conv2D(x.shape[-1], 1, use_bias=True, name=scope(name, "Conv2d_1x1"))(mixed)
    if not activation:
        return ResidualScale(scale, name=name)([x, up])
    x = ResidualScale(scale, name=scope(name, "Sum"))([x, up])
    return layers.Activation("relu", name=name)(x)


def block35(x, widths, scale, name, activation=True):
    """Inception-ResNet-A, 35x35 (paper figures 10 and 16).

    `widths`: the six conv widths in slim order (Branch_0; Branch_1 x2; Branch_2 x3).
    """
    w0, w1a, w1b, w2a, w2b, w2c = widths
    branch_0 = conv_bn(x, w0, 1, scope(name, "Branch_0", "Conv2d_1x1"))
    branch_1 = conv_bn(x, w1a, 1, scope(name, "Branch_1", "Conv2d_0a_1x1"))
    branch_1 = conv_bn(branch_1, w1b, 3, scope(name, "Branch_1", "Conv2d_0b_3x3"))
    branch_2 = conv_bn(x, w2a, 1, scope(name, "Branch_2", "Conv2d_0a_1x1"))
    branch_2 = conv_bn(branch_2, w2b, 3, scope(name, "Branch_2", "Conv2d_0b_3x3"))
    branch_2 = conv_bn(branch_2, w2c, 3, scope(name, "Branch_2", "Conv2d_0c_3x3"))
    return _residual(x, [branch_0, branch_1, branch_2], scale, activation, name)


def _two_branch_residual(x, widths, kernels, scale, name, activation):
    """Inception-ResNet-B and -C: a 1x1 branch beside a 1x1 -> 1xk -> kx1 branch."""
    w0, w1a, w1b, w1c = widths
    (kernel_b, name_b), (kernel_c, name_c) = kernels
    branch_0 = conv_bn(x, w0, 1, scope(name, "Branch_0", "Conv2d_1x1"))
    branch_1 = conv_bn(x, w1a, 1, scope(name, "Branch_1", "Conv2d_0a_1x1"))
    branch_1 = conv_bn(branch_1, w1b, kernel_b, scope(name, "Branch_1", name_b))
    branch_1 = conv_bn(branch_1, w1c, kernel_c, scope(name, "Branch_1", name_c))
    return _residual(x, [branch_0, branch_1], scale, activation, name)


def block17(x, widths, scale, name, activation=True):
    """Inception-ResNet-B, 17x17 (paper figures 11 and 17); `widths` in slim order."""
    kernels = (((1, 7), "Conv2d_0b_1x7"), ((7, 1), "Conv2d_0c_7x1"))
    return _two_branch_residual(x, widths, kernels, scale, name, activation)


def block8(x, widths, scale, name, activation=True):
    """Inception-ResNet-C, 8x8 (paper figures 13 and 19); `widths` in slim order."""
    kernels = (((1, 3), "Conv2d_0b_1x3"), ((3, 1), "Conv2d_0c_3x1"))
    return _two_branch_residual(x, widths, kernels, scale, name, activation)


def residual_stages(x, depths, scales, widths, reductions):
    """The A, B, C stages of an Inception-ResNet with the two reductions between them.

    Blocks are named as slim's `slim.repeat` names them (`Repeat/block35_1`, `Repeat_1/block17_1`,
    `Repeat_2/block8_1`); the last C block is slim's `Block8`: scale 1.0 and no ReLU, as in every
    public implementation, so the features reaching the pooling are not clipped at zero twice.
    `reductions` = (reduction_a widths k, l, m, n; reduction_b widths).
    Returns the output and the 17x17 features the auxiliary head reads.
    """
    depth_a, depth_b, depth_c = depths
    scale_a, scale_b, scale_c = scales
    widths_a, widths_b, widths_c = widths
    for i in range(depth_a):
        x = block35(x, widths_a, scale_a, scope("Repeat", f"block35_{i + 1}"))
    x = reduction_a(x, *reductions[0])
    for i in range(depth_b):
        x = block17(x, widths_b, scale_b, scope("Repeat_1", f"block17_{i + 1}"))
    pre_aux = x
    x = inception_resnet_reduction_b(x, reductions[1])
    for i in range(depth_c - 1):
        x = block8(x, widths_c, scale_c, scope("Repeat_2", f"block8_{i + 1}"))
    x = block8(x, widths_c, 1.0, "Block8", activation=False)
    return x, pre_aux


# --------------------------------------------------------------------------- heads


def aux_classifier(x, classes, activation, names):
    """Slim's auxiliary classifier on the 17x17 features, used only for training.

    `names` = (pool, 1x1 conv, full-size conv, dense): slim names them differently in each network.
    The second conv spans the whole pooled map, so its kernel follows the input size.
    """
    pool_name, conv_name, full_conv_name, dense_name = names
    if x.shape[1] is None or min(x.shape[1:3]) < 5:
        raise ValueError(
            "aux_logits=True needs the 17x17 stage to be at least 5x5 for the head's 5x5 pooling; "
            f"this input gives {x.shape[1]}x{x.shape[2]}. Use a larger input_shape (at least "
            "about 139x139) or aux_logits=False."
        )
    x = layers.AveragePooling2D(5, strides=3, padding="valid", name=scope("AuxLogits", pool_name))(
        x
    )
    x = conv_bn(x, 128, 1, scope("AuxLogits", conv_name))
    x = conv_bn(x, 768, tuple(x.shape[1:3]), scope("AuxLogits", full_conv_name), padding="valid")
    x = layers.Flatten(name=scope("AuxLogits", "Flatten"))(x)
    return layers.Dense(
        classes, activation=activation, dtype="float32", name=scope("AuxLogits", dense_name)
    )(x)
