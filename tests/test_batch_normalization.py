"""Our BatchNormalization: Keras's layer, computed by TensorFlow's fused kernel, with Keras's results."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_inception.models.blocks import conv_bn
from keras_inception.models.layers import BatchNormalization

SHAPE = (4, 5, 5, 6)


def twin_layers(axis=-1, scale=False):
    """Ours and Keras's layer, built for SHAPE, holding the same non-trivial weights."""
    ours = BatchNormalization(axis=axis, scale=scale, epsilon=1e-3)
    keras_layer = keras.layers.BatchNormalization(axis=axis, scale=scale, epsilon=1e-3)
    rng = np.random.default_rng(1)
    for layer in (ours, keras_layer):
        layer.build(SHAPE)
    for ours_weight, keras_weight in zip(ours.weights, keras_layer.weights):
        value = rng.uniform(0.5, 1.5, ours_weight.shape).astype("float32")
        ours_weight.assign(value)
        keras_weight.assign(value)
    return ours, keras_layer


def run(layer, inputs, projection, training):
    """Outputs, and the gradients of a random projection of them w.r.t. the inputs and weights."""
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs, training=training)
        loss = tf.reduce_sum(tf.cast(outputs, "float32") * projection)
    gradients = tape.gradient(loss, [inputs, *layer.trainable_weights])
    return outputs, gradients


def assert_close(actual, expected, tolerance):
    actual, expected = np.asarray(actual, "float32"), np.asarray(expected, "float32")
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(actual - expected).max() <= tolerance * scale


@pytest.fixture
def policy(request):
    keras.mixed_precision.set_global_policy(request.param)
    yield request.param
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"], indirect=True)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("axis, scale", [(-1, False), (3, True), (1, False)])
def test_outputs_gradients_and_moving_statistics_match_keras(policy, training, axis, scale):
    ours, keras_layer = twin_layers(axis, scale)
    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.normal(2.0, 3.0, SHAPE).astype("float32"))
    projection = tf.constant(rng.normal(size=SHAPE).astype("float32"))
    # bf16 outputs are rounded to 8 bits; the two layers may round a value differently.
    tolerance = 1e-5 if policy == "float32" else 2e-2
    initial_moving_mean = ours.moving_mean.numpy()

    ours_outputs, ours_gradients = run(ours, inputs, projection, training)
    keras_outputs, keras_gradients = run(keras_layer, inputs, projection, training)

    assert ours_outputs.dtype == keras_outputs.dtype
    assert_close(ours_outputs, keras_outputs, tolerance)
    assert len(ours_gradients) == len(keras_gradients) == 2 + scale  # inputs, beta, gamma
    for ours_gradient, keras_gradient in zip(ours_gradients, keras_gradients):
        assert_close(ours_gradient, keras_gradient, tolerance)
    for ours_weight, keras_weight in zip(
        ours.non_trainable_weights, keras_layer.non_trainable_weights
    ):
        assert_close(ours_weight, keras_weight, 1e-6)
    assert np.allclose(ours.moving_mean.numpy(), initial_moving_mean) != training


def test_a_training_step_runs_the_fused_kernels_and_no_separate_moments():
    inputs = keras.Input((9, 9, 3))
    model = keras.Model(inputs, conv_bn(inputs, 4, 3, "Conv2d_1a_3x3"))
    images = tf.random.normal((2, 9, 9, 3))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(images, training=True))
        return tape.gradient(loss, model.trainable_weights)

    op_types = {op.type for op in step.get_concrete_function().graph.get_operations()}
    assert {"FusedBatchNormV3", "FusedBatchNormGradV3"} <= op_types
    assert "Mean" not in op_types and "SquaredDifference" not in op_types


def test_weights_files_name_the_layer_as_keras_does(tmp_path):
    """`.weights.h5` paths come from class names: ours must read as `batch_normalization`."""
    _, keras_layer = twin_layers()
    inputs = keras.Input(SHAPE[1:])
    keras.Model(inputs, keras_layer(inputs)).save_weights(tmp_path / "keras.weights.h5")
    restored = keras.Model(inputs, BatchNormalization(scale=False, epsilon=1e-3)(inputs))
    restored.load_weights(tmp_path / "keras.weights.h5")
    for restored_weight, keras_weight in zip(restored.layers[1].weights, keras_layer.weights):
        np.testing.assert_array_equal(restored_weight.numpy(), keras_weight.numpy())
