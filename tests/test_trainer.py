"""The trainer: resume after SIGKILL, the loss the recipe describes, weight decay, precision,
and run folders that are never overwritten by another recipe."""

import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_inception.training import (
    RecipeError,
    RunFolder,
    build_model,
    fit,
    load_recipe,
    recipe_to_toml,
)
from keras_inception.training.method import SlimL2, add_weight_decay, compile_for_recipe
from keras_inception.training.trainer import _run_settings

# A child process training a tiny network on a fixed-order dataset with deterministic ops; with
# a third argument it SIGKILLs itself right after that optimizer step.
TRAIN_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import keras, numpy as np, tensorflow as tf
    from keras_inception.training import build_model, fit, load_recipe

    recipe = load_recipe("quickstart", [
        "model.depths=[0, 0, 1]", "training.batch_size=8", "training.epochs=3",
        "training.deterministic=true", "detector.check_every=2", "detector.probe_size=8",
    ])
    keras.utils.set_random_seed(recipe.seed)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (16, 75, 75, 3)).astype("float32")
    labels = rng.integers(0, 10, 16).astype("int32")
    train_ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    val_ds = tf.data.Dataset.from_tensor_slices((images[:8], labels[:8])).batch(8)

    class KillAt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if len(sys.argv) > 2 and int(self.model.optimizer.iterations) == int(sys.argv[2]):
                os.kill(os.getpid(), signal.SIGKILL)

    model = build_model(recipe.model, 10)
    fit(model, recipe, train_ds, val_ds, run_dir=sys.argv[1], callbacks=[KillAt()], verbose=0)
    np.savez(os.path.join(sys.argv[1], "final_weights.npz"), *model.get_weights())
    """
)
STEPS_PER_EPOCH = 2
KILL_AT_STEP = 3  # in the middle of the second epoch


@pytest.mark.slow
@pytest.mark.subprocess
def test_killed_run_resumes_to_the_same_weights(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    whole, interrupted = tmp_path / "whole", tmp_path / "interrupted"

    def start(*args):
        return subprocess.Popen([sys.executable, str(script), *map(str, args)], cwd=tmp_path)

    runs = [start(whole), start(interrupted, KILL_AT_STEP)]
    assert [run.wait(timeout=600) for run in runs] == [0, -signal.SIGKILL]
    assert (interrupted / "backup").is_dir() and not (interrupted / "final_weights.npz").exists()
    assert start(interrupted).wait(timeout=600) == 0  # the same command again

    logs = [
        np.genfromtxt(run / "log.csv", delimiter=",", names=True) for run in (whole, interrupted)
    ]
    assert list(logs[0]["epoch"]) == list(logs[1]["epoch"]) == [0, 1, 2]
    np.testing.assert_array_equal(logs[0]["loss"], logs[1]["loss"])
    final = [np.load(run / "final_weights.npz") for run in (whole, interrupted)]
    assert len(final[0].files) == len(final[1].files) > 100
    for name in final[0].files:
        np.testing.assert_array_equal(final[0][name], final[1][name])
    assert not (interrupted / "backup").exists()  # removed once the run finished


@pytest.mark.slow
def test_auxiliary_head_is_trained_with_weight_0_4_and_main_metrics():
    recipe = load_recipe(
        "quickstart",
        [
            "model.input_size=139",
            "model.aux_logits=true",
            "model.depths=[0, 1, 1]",
            "training.epochs=1",
            "training.steps_per_epoch=1",
            "training.batch_size=4",
            "detector.probe_size=4",
        ],
    )
    model = build_model(recipe.model, 10)
    images = np.zeros((4, 139, 139, 3), "float32")
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(4, dtype="int32"))).batch(4)
    result = fit(model, recipe, dataset, dataset, verbose=0)
    assert model.get_compile_config()["loss_weights"] == [1.0, 0.4]
    assert model.loss[0].get_config()["label_smoothing"] == recipe.training.label_smoothing
    top1 = [
        name for name in result.history if name.endswith("top1") and not name.startswith("val_")
    ]
    assert top1 == ["Logits__Logits_top1"]  # top-1 and top-5 are the main classifier's
    assert "AuxLogits__Logits_loss" in result.history


def test_weight_decay_is_slims_l2_on_kernels_only():
    recipe = load_recipe("quickstart", ["model.depths=[0, 0, 1]"])
    model = build_model(recipe.model, 10)
    add_weight_decay(model, 4e-5)
    kernels = [v for v in model.trainable_variables if v.name == "kernel"]
    others = [v for v in model.trainable_variables if v.name != "kernel"]
    assert kernels and others and all(v.regularizer is None for v in others)
    # slim: 4e-5 * tf.nn.l2_loss(w) = 4e-5 * sum(w ** 2) / 2, summed over conv and dense kernels.
    expected = sum(4e-5 * np.sum(np.square(v.numpy())) / 2 for v in kernels)
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)


def test_precision_policy_applies_during_the_run_only():
    recipe = load_recipe(
        "quickstart", ["model.depths=[0, 0, 1]", 'training.precision="mixed_bfloat16"']
    )
    before = keras.mixed_precision.global_policy().name
    with _run_settings(recipe):
        model = build_model(recipe.model, 10)
        compile_for_recipe(model, recipe, steps_per_epoch=10)
    assert keras.mixed_precision.global_policy().name == before
    assert model.get_layer("Conv2d_1a_3x3").compute_dtype == "bfloat16"
    assert model.get_layer("Logits__Logits").compute_dtype == "float32"


def test_a_run_folder_refuses_another_recipe(tmp_path):
    run = RunFolder(tmp_path)
    run.claim(recipe_to_toml(load_recipe("quickstart")))
    saved = (tmp_path / "recipe.toml").read_text()
    run.claim(recipe_to_toml(load_recipe("quickstart")))  # the same recipe: resume
    with pytest.raises(RecipeError, match="different recipe"):
        run.claim(recipe_to_toml(load_recipe("quickstart", ["optimizer.learning_rate=0.1"])))
    assert (tmp_path / "recipe.toml").read_text() == saved


def test_slim_l2_is_keras_l2_at_half_the_factor_in_value_and_gradient():
    kernel = tf.Variable(np.random.default_rng(0).normal(size=(3, 3, 4, 5)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        ours = SlimL2(4e-5)(kernel)
        keras_own = keras.regularizers.L2(2e-5)(kernel)
    np.testing.assert_allclose(float(ours), float(keras_own), rtol=1e-6)
    np.testing.assert_allclose(
        tape.gradient(ours, kernel), tape.gradient(keras_own, kernel), rtol=1e-6
    )
    np.testing.assert_allclose(tape.gradient(ours, kernel), 4e-5 * kernel.numpy(), rtol=1e-6)
