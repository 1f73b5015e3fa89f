"""Fine-tuning: weights in recipes (backbone strict, heads fresh on a new class count), frozen
scopes really frozen, two phases that survive a kill, class names kept end to end."""

import os
import signal

import helpers
import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_inception_cli as cli
from keras_inception import InceptionResNetV2, InceptionV4
from keras_inception.models.class_names import class_names
from keras_inception.training import build_model, fit, load_recipe, train
from keras_inception.training.finetune import set_trainable, training_phases
from keras_inception.training.method import SlimL2, add_weight_decay
from keras_inception.training.trainer import load_recipe_weights
from keras_inception.weights.matching import WeightsMismatchError

TINY = dict(weights=None, input_shape=(75, 75, 3), depths=(0, 0, 1))
BACKBONE_KERNEL = "Mixed_6a__Branch_0__Conv2d_1a_3x3"
# The quickstart shortened: depths 0/0/1, 3 epochs of 2 steps, deterministic ops.
SHORT = [
    "model.depths=[0, 0, 1]",
    "training.batch_size=16",
    "training.epochs=3",
    "training.steps_per_epoch=2",
    "training.deterministic=true",
    "detector.check_every=2",
    "detector.probe_size=8",
]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A seeded 5-class tiny Inception-ResNet-v2 and its weights file."""
    model = helpers.randomise(InceptionResNetV2(classes=5, **TINY), seed=1)
    path = tmp_path_factory.mktemp("source") / "irv2.weights.h5"
    model.save_weights(path)
    return model, path


def kernel(model, name=BACKBONE_KERNEL):
    return model.get_layer(name).kernel.numpy()


def recipe_with(*overrides):
    return load_recipe("quickstart", [*SHORT, *overrides])


def test_a_weights_file_loads_through_the_recipe_with_a_fresh_head_for_new_classes(source):
    model, path = source
    recipe = recipe_with(f'model.weights="{path}"')
    target = build_model(recipe.model, 3)
    head_before = target.get_layer("Logits__Logits").kernel.numpy()
    report = load_recipe_weights(target, recipe.model)
    np.testing.assert_array_equal(kernel(target), kernel(model))
    np.testing.assert_array_equal(target.get_layer("Logits__Logits").kernel.numpy(), head_before)
    assert list(report.new_heads) == ["Logits"] and "(1536, 5)" in report.new_heads["Logits"]
    assert report.loaded == len(target.weights) - 2  # all but the new head's kernel and bias

    same_classes = build_model(recipe.model, 5)
    report = load_recipe_weights(same_classes, recipe.model)
    assert report.loaded_heads == ("Logits",) and not report.new_heads
    np.testing.assert_array_equal(same_classes.get_weights()[-1], model.get_weights()[-1])


def test_saved_models_and_run_folders_load_as_weights(source, tmp_path):
    model, _ = source
    model.save(tmp_path / "irv2.keras")
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.toml").write_text("")
    recipe = recipe_with(f'model.weights="{run}"')
    with pytest.raises(ValueError, match="has not finished"):
        load_recipe_weights(build_model(recipe.model, 3), recipe.model)
    os.link(tmp_path / "irv2.keras", run / "model.keras")
    (run / "finished.json").write_text("{}")
    for weights in (tmp_path / "irv2.keras", run):
        target = build_model(recipe_with(f'model.weights="{weights}"').model, 3)
        load_recipe_weights(target, recipe_with(f'model.weights="{weights}"').model)
        np.testing.assert_array_equal(kernel(target), kernel(model))


def test_a_file_of_another_network_fails_with_the_strict_listing(tmp_path):
    v4 = InceptionV4(classes=5, **TINY)
    v4.save_weights(tmp_path / "v4.weights.h5")
    recipe = recipe_with(f'model.weights="{tmp_path / "v4.weights.h5"}"')
    target = build_model(recipe.model, 3)
    before = target.get_weights()
    with pytest.raises(WeightsMismatchError) as error:
        load_recipe_weights(target, recipe.model)
    message = str(error.value)
    assert "(inception_v4 weights)" in message and "missing from the source" in message
    assert "Block8/Conv2d_1x1/weights" in message and "not in the model (unexpected)" in message
    for ours, theirs in zip(target.get_weights(), before, strict=True):
        np.testing.assert_array_equal(ours, theirs)  # nothing was loaded


def test_a_bad_weights_value_is_refused_before_the_run_folder_is_written(tmp_path):
    recipe = recipe_with('model.weights="no_such.weights.h5"')
    with pytest.raises(FileNotFoundError, match=r"model\.weights.*no_such\.weights\.h5.*imagenet"):
        train(recipe, output=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert recipe_with('model.weights="none"').model.weights == "none"


def test_trainable_scopes_select_exactly_the_layers_they_name():
    model = InceptionResNetV2(classes=3, **TINY)
    with_weights = [layer.name for layer in model.layers if layer.weights]
    named = set_trainable(model, ("InceptionResnetV2/Block8", "Logits"), "inception_resnet_v2")
    expected = [
        name for name in with_weights if name.startswith("Block8") or name.startswith("Logits")
    ]
    assert named == expected and len(named) == 10  # Block8: 4 conv + 3 BN + the up-projection
    assert {layer.name for layer in model.layers if layer.trainable and layer.weights} == set(named)
    assert set_trainable(model, "head") == ["Logits__Logits"]
    assert len(set_trainable(model, "all")) == len(with_weights)
    with pytest.raises(ValueError, match=r"'Mixed_9z' names no layer.*Mixed_6a"):
        set_trainable(model, ("Mixed_9z",))


def test_phases_split_the_epochs():
    recipe = recipe_with("finetune.head_epochs=1", "finetune.head_learning_rate=0.01")
    head, main = training_phases(recipe)
    assert (head.start_epoch, head.end_epoch, head.trainable, head.learning_rate) == (
        0,
        1,
        "head",
        0.01,
    )
    assert (main.start_epoch, main.end_epoch, main.trainable) == (1, 3, "all")
    with pytest.raises(ValueError, match="finetune.head_epochs"):
        recipe_with("finetune.head_epochs=3")


def random_batches(batches=2, batch_size=16, classes=3):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (batches * batch_size, 75, 75, 3)).astype("float32")
    labels = rng.integers(0, classes, batches * batch_size).astype("int32")
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)


@pytest.mark.slow
def test_frozen_layers_and_their_batch_norm_statistics_do_not_move(source):
    _, path = source
    recipe = recipe_with(
        f'model.weights="{path}"', 'finetune.trainable=["Block8", "Logits"]', "training.epochs=1"
    )
    model = build_model(recipe.model, 3)
    load_recipe_weights(model, recipe.model)
    frozen_bn = model.get_layer("Mixed_6a__Branch_0__Conv2d_1a_3x3__BatchNorm")
    trained_bn = model.get_layer("Block8__Branch_0__Conv2d_1x1__BatchNorm")
    before = {
        "kernel": kernel(model),
        "mean": frozen_bn.moving_mean.numpy(),
        "variance": frozen_bn.moving_variance.numpy(),
        "trained mean": trained_bn.moving_mean.numpy(),
        "head": model.get_layer("Logits__Logits").kernel.numpy(),
        "block8": kernel(model, "Block8__Conv2d_1x1"),
    }
    fit(model, recipe, random_batches(), verbose=0)
    np.testing.assert_array_equal(kernel(model), before["kernel"])
    np.testing.assert_array_equal(frozen_bn.moving_mean.numpy(), before["mean"])
    np.testing.assert_array_equal(frozen_bn.moving_variance.numpy(), before["variance"])
    for moved in ("trained mean", "head", "block8"):
        current = {
            "trained mean": trained_bn.moving_mean,
            "head": model.get_layer("Logits__Logits").kernel,
            "block8": model.get_layer("Block8__Conv2d_1x1").kernel,
        }[moved]
        assert not np.array_equal(current.numpy(), before[moved]), moved


def test_weight_decay_survives_a_save_and_load(tmp_path):
    model = InceptionResNetV2(classes=3, **TINY)
    add_weight_decay(model, 4e-5)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    layer = loaded.get_layer(BACKBONE_KERNEL)
    assert isinstance(layer.kernel_regularizer, SlimL2)
    assert layer.kernel_regularizer.weight_decay == pytest.approx(4e-5)
    np.testing.assert_allclose(float(sum(loaded.losses)), float(sum(model.losses)), rtol=1e-6)
    # Only what trains is penalised: freezing a layer takes its kernel's penalty out of the loss.
    frozen = loaded.get_layer(BACKBONE_KERNEL)
    penalty = 2e-5 * float(np.sum(np.square(frozen.kernel.numpy())))
    frozen.trainable = False
    np.testing.assert_allclose(
        float(sum(loaded.losses)), float(sum(model.losses)) - penalty, rtol=1e-5
    )


def test_class_names_travel_with_a_saved_model(tmp_path):
    recipe = recipe_with()
    model = build_model(recipe.model, 3, ["cat", "dog", "eel"])
    model.save(tmp_path / "model.keras")
    assert class_names(keras.saving.load_model(tmp_path / "model.keras")) == ["cat", "dog", "eel"]
    with pytest.raises(ValueError, match="2 class names for a classifier of 3"):
        build_model(recipe.model, 3, ["cat", "dog"])


# A two-phase fine-tuning run through the command line, killed in turn: in the head phase (its
# second step: no backup yet, so the next start begins again), at the phase boundary (epoch 2's
# checkpoint write, the head phase's backup the newest state) and in the main phase (epoch 3's
# first step), then left to finish. With each, the main-phase epochs that start must begin
# (Keras prints no "Epoch 1/1" for the one-epoch head phase).
PHASE_CHAIN = [
    ("batch_end:2", []),
    ("checkpoint_write:2", [2]),
    ("batch_end:3", [2, 3]),
    (None, [3]),
]


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_two_phase_run_killed_in_either_phase_resumes_to_the_same_weights(tmp_path):
    # Two of the digits, so that each epoch ends on a fifth of the validation images, in
    # batches of 8 (what resumes does not depend on the batch).
    weights = tmp_path / "digits.weights.h5"
    helpers.randomise(InceptionResNetV2(classes=2, **TINY), seed=2).save_weights(weights)
    overrides = [
        *SHORT,
        'data.classes=["3", "7"]',
        "training.batch_size=8",
        f'model.weights="{weights}"',
        "finetune.head_epochs=1",
        "finetune.head_learning_rate=0.01",
    ]
    whole = tmp_path / "whole"
    uninterrupted = helpers.start_training(overrides, whole, tmp_path / "whole.log")
    for index, (kill_at, epochs) in enumerate(PHASE_CHAIN):
        log = tmp_path / f"{index}.log"
        started = helpers.train_in_a_process(overrides, tmp_path / "killed", log, kill_at)
        assert started.status == (-signal.SIGKILL if kill_at else 0), (kill_at, started.output)
        assert started.epochs == epochs and started.finished == (kill_at is None), kill_at
    assert uninterrupted.wait(timeout=900) == 0, (tmp_path / "whole.log").read_text()[-2000:]

    # The head phase trained the classifier alone from the file: the backbone then moved.
    output = (tmp_path / "whole.log").read_text()
    assert "Loaded" in output and "Logits new" not in output
    helpers.assert_same_final_weights(tmp_path / "killed", whole)
    assert (whole / "weights.json").exists()
    assert (whole / "classes.txt").read_text().split() == ["3", "7"]


@pytest.mark.slow
def test_predict_on_a_fine_tuned_run_prints_the_folders_class_names(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name in ("apple", "banana"):
        (tmp_path / "fruit" / name).mkdir(parents=True)
        for index in range(12):
            pixels = rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)
            tf.io.write_file(
                str(tmp_path / "fruit" / name / f"{index}.png"), tf.io.encode_png(pixels)
            )
    overrides = [
        *SHORT,
        "training.epochs=1",
        "training.batch_size=8",
        'data.source="folder"',
        f'data.train="{tmp_path / "fruit"}"',
        "data.validation_split=0.25",
    ]
    run = tmp_path / "run"
    arguments = ["train", "quickstart", *[f"--set={o}" for o in overrides], "--output", str(run)]
    assert cli.main(arguments) == 0
    assert (run / "classes.txt").read_text() == "apple\nbanana\n"
    assert "validation" in (run / "split.csv").read_text()
    capsys.readouterr()
    image = str(tmp_path / "fruit" / "apple" / "0.png")
    assert cli.main(["predict", "--model", str(run), "--top", "2", image]) == 0
    printed = capsys.readouterr().out
    assert "apple" in printed and "banana" in printed and "class 0" not in printed
    # evaluate reads a folder by the model's class names: one without them is refused by name.
    assert cli.main(["evaluate", "--model", str(run), "--data", str(tmp_path / "fruit")]) == 0
    assert "| run | single | 24 |" in capsys.readouterr().out
    (tmp_path / "fruit" / "banana").rename(tmp_path / "fruit" / "cherry")
    assert cli.main(["evaluate", "--model", str(run), "--data", str(tmp_path / "fruit")]) == 1
    assert "banana" in capsys.readouterr().err
