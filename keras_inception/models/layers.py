"""The one custom layer the three networks need."""

import keras


def check_residual_scale(scale, what="residual_scale"):
    """Return `scale` as a float, or raise if it is outside the paper's useful range (0, 1]."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise ValueError(f"{what} must be a number in (0, 1], got {scale!r}.")
    if not 0.0 < scale <= 1.0:
        raise ValueError(
            f"{what} must be in (0, 1] (the paper scales residuals by 0.1 to 0.3), got {scale!r}."
        )
    return float(scale)


@keras.saving.register_keras_serializable(package="keras_inception")
class ResidualScale(keras.layers.Layer):
    """Add a residual branch scaled by a constant: `shortcut + scale * residual`.

    Scaling the residual before the addition is the paper's fix for Inception-ResNets whose last
    layers "died" (output only zeros) early in training. The scale is a constant, not a weight, and
    lives in the layer's config so a saved model keeps it.
    """

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = check_residual_scale(scale, "ResidualScale scale")

    def call(self, inputs):
        shortcut, residual = inputs
        return shortcut + self.scale * residual

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}
