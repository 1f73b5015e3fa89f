"""How much arithmetic a forward pass costs, counted from the model's own layers.

Papers and model cards quote it (timm lists GMACs per model), and achieved FLOP/s, the figure that
says how well a machine is used, is this count times images per second.
"""

import math

import keras


def forward_flops(model):
    """FLOPs of one example through `model`'s convolutions and dense layers, two per multiply-add.

    Every output element of a Conv2D or Dense layer is one dot product over its kernel's input
    window, so a layer costs 2 x (output elements) x (kernel elements per output channel). Batch
    norm, activations, pooling and residual sums are left out, as TensorFlow's profiler leaves
    them out of the convolution and matrix-product counts: for these networks they are well
    under 1% of the total.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += forward_flops(layer)
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            output_elements = math.prod(layer.output.shape[1:])
            total += 2 * output_elements * math.prod(layer.kernel.shape[:-1])
    return total
