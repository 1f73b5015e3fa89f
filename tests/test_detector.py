"""The dead-network detector: stops a dying run with its last healthy weights, leaves a
healthy one alone (see also the quickstart run in test_cli.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_inception import InceptionResNetV2
from keras_inception.training import DeadNetworkError, build_model, fit, load_recipe
from keras_inception.training.callbacks import DeadNetworkDetector, pooled_features_layer

CHECK_EVERY = 2
PATIENCE = 2
KILL_AT_STEP = 5
FINAL_FEATURES_BN = "Conv2d_7b_1x1__BatchNorm"  # IR-v2's last BN, followed by ReLU and pooling


def tiny_recipe(*overrides):
    return load_recipe(
        "quickstart",
        [
            "model.depths=[0, 0, 1]",
            "training.epochs=3",
            "training.steps_per_epoch=4",
            "training.batch_size=8",
            f"detector.check_every={CHECK_EVERY}",
            f"detector.patience={PATIENCE}",
            "detector.probe_size=8",
            *overrides,
        ],
    )


def random_batches(batches=4, batch_size=8, classes=10):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (batches * batch_size, 75, 75, 3)).astype("float32")
    labels = rng.integers(0, classes, batches * batch_size).astype("int32")
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)


class KillFinalFeatures(keras.callbacks.Callback):
    """Record the weights after every step; at `step`, push the last BN's output far below zero
    so that the ReLU before pooling outputs only zeros (and, with no gradient, stays dead)."""

    def __init__(self, step):
        super().__init__()
        self.step = step
        self.weights_at = {}

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations)
        self.weights_at[step] = self.model.get_weights()
        if step == self.step:
            beta = self.model.get_layer(FINAL_FEATURES_BN).beta
            beta.assign(np.full(beta.shape, -1e3, "float32"))


@pytest.mark.slow
def test_dying_run_stops_with_its_last_healthy_weights(tmp_path):
    keras.utils.set_random_seed(0)
    recipe = tiny_recipe()
    model = build_model(recipe.model, 10)
    killer = KillFinalFeatures(KILL_AT_STEP)
    with pytest.raises(DeadNetworkError) as error:
        fit(
            model,
            recipe,
            random_batches(),
            random_batches(1),
            run_dir=tmp_path,
            callbacks=[killer],
            verbose=0,
        )

    checks = np.loadtxt(tmp_path / "zero_fraction.csv", delimiter=",", skiprows=1, ndmin=2)
    steps, fractions = checks[:, 1].astype(int), checks[:, 2]
    healthy = steps[fractions < recipe.detector.threshold]
    dead = steps[fractions >= recipe.detector.threshold]
    # Every check before the kill is healthy, every one after it dead, and the run stops at the
    # PATIENCE-th dead check: within PATIENCE check intervals of the death.
    assert list(healthy) == [s for s in range(CHECK_EVERY, KILL_AT_STEP, CHECK_EVERY)]
    assert list(dead) == [s for s in range(KILL_AT_STEP + 1, steps[-1] + 1) if s % CHECK_EVERY == 0]
    assert len(dead) == PATIENCE
    assert steps[-1] - KILL_AT_STEP <= PATIENCE * CHECK_EVERY
    assert max(killer.weights_at) == steps[-1]  # training stopped at the tripping check
    # The model holds the weights of the last healthy check, not the dead or averaged ones.
    for restored, healthy_weights in zip(model.get_weights(), killer.weights_at[healthy[-1]]):
        np.testing.assert_array_equal(restored, healthy_weights)
    message = str(error.value)
    assert f"step {steps[-1]}" in message
    assert f"last healthy check (step {healthy[-1]}" in message
    assert "residual scale" in message and "100.00% exact zeros" in message


def test_zero_fraction_counts_exact_zeros_of_the_features_before_pooling():
    model = InceptionResNetV2(input_shape=(75, 75, 3), classes=3, depths=(0, 0, 1))
    assert pooled_features_layer(model).name == "Logits__AvgPool"
    images = np.random.default_rng(1).uniform(-1, 1, (2, 75, 75, 3)).astype("float32")
    features = keras.Model(model.input, model.get_layer("Logits__AvgPool").input)(images)
    detector = DeadNetworkDetector(images)
    detector.set_model(model)
    assert detector.zero_fraction() == pytest.approx(float(np.mean(np.asarray(features) == 0)))
    assert 0 < detector.zero_fraction() < 1  # a freshly built network is alive


def test_a_model_without_global_pooling_needs_a_layer_to_watch():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs))
    with pytest.raises(ValueError, match="GlobalAveragePooling2D"):
        DeadNetworkDetector(np.zeros((1, 4), "float32")).set_model(model)
    detector = DeadNetworkDetector(np.zeros((1, 4), "float32"), features_layer="dense")
    detector.set_model(model)
    assert detector.zero_fraction() == 1.0  # zero input, zero bias: all zeros


def test_non_finite_features_count_as_dead():
    model = InceptionResNetV2(input_shape=(75, 75, 3), classes=3, depths=(0, 0, 1))
    images = np.random.default_rng(1).uniform(-1, 1, (2, 75, 75, 3)).astype("float32")
    detector = DeadNetworkDetector(images)
    detector.set_model(model)
    alive = detector.zero_fraction()
    layer = model.get_layer("Block8__Conv2d_1x1")  # the last projection before pooling
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, np.full_like(bias, np.nan)])
    assert alive < 1 and detector.zero_fraction() == 1.0
    layer.set_weights([kernel, np.full_like(bias, np.inf)])
    assert detector.zero_fraction() == 1.0
