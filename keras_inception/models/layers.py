"""The two layers of our own the three networks use: a scaled residual sum, and Keras's batch
norm computed by TensorFlow's fused kernel."""

import keras

from keras_inception.errors import check, is_number


def check_residual_scale(scale, what="residual_scale"):
    """Return `scale` as a float, or raise if it is outside the paper's useful range (0, 1]."""
    check(is_number(scale), what, "a number in (0, 1]", scale)
    check(0.0 < scale <= 1.0, what, "in (0, 1] (the paper scales residuals by 0.1 to 0.3)", scale)
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


@keras.saving.register_keras_serializable(package="keras_inception")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras's BatchNormalization, computed by TensorFlow's fused batch-norm kernel where it can be.

    Keras 3 writes batch norm as separate cast, moment and arithmetic ops, run one by one; on
    TensorFlow one `FusedBatchNormV3` kernel does the same work in each direction, and batch norm
    follows every convolution of these networks (docs/scaling.md has the training speed-up).
    Arguments, weights, moving-statistics update and results are Keras's; the moving variance
    takes the biased batch variance, as Keras's does. The class keeps Keras's name because
    `.weights.h5` files name a layer by its class, so keras.applications' files load unchanged.

    The fused kernel serves channels-last 4-D inputs on the TensorFlow backend; other backends,
    masks, renorm and synchronized batch norm take Keras's own path.
    """

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # only the TensorFlow backend gets here

        moving_mean = tf.convert_to_tensor(self.moving_mean)
        moving_variance = tf.convert_to_tensor(self.moving_variance)
        scale = tf.convert_to_tensor(self.gamma) if self.scale else tf.ones_like(moving_mean)
        offset = tf.convert_to_tensor(self.beta) if self.center else tf.zeros_like(moving_mean)
        update_statistics = bool(training) and self.trainable
        # Training computes the batch's statistics and takes none (as slim's fused path passes).
        mean, variance = (
            (tf.constant([], moving_mean.dtype),) * 2
            if update_statistics
            else (moving_mean, moving_variance)
        )
        outputs, batch_mean, batch_variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs,
            scale=scale,
            offset=offset,
            mean=mean,
            variance=variance,
            epsilon=self.epsilon,
            exponential_avg_factor=1.0,
            data_format="NHWC",
            is_training=update_statistics,
        )
        if update_statistics:
            # The kernel returns the unbiased (n - 1) variance; Keras averages the biased one.
            # Few ops, each constant made once: the training step traces them for every layer.
            values = tf.cast(tf.size(inputs), batch_variance.dtype)
            batch_variance *= 1.0 - inputs.shape[-1] / values
            taken = tf.constant(1.0 - self.momentum, moving_mean.dtype)
            # momentum * moving + (1 - momentum) * batch as TensorFlow's in-place subtraction:
            # Keras's `assign_sub` reads the variable again and assigns.
            self.moving_mean.value.assign_sub((moving_mean - batch_mean) * taken)
            self.moving_variance.value.assign_sub((moving_variance - batch_variance) * taken)
        return outputs

    def _fusable(self, inputs, mask):
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and not self.synchronized
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and inputs.dtype in ("float32", "bfloat16", "float16")
        )
