"""Recipes: the paper's method in the bundled files, checked loading, `--set` overrides, packaging."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_inception
from keras_inception.training import (
    RecipeError,
    build_model,
    bundled_recipes,
    load_recipe,
    recipe_to_toml,
)
from keras_inception.training.finetune import training_phases
from keras_inception.training.optimizer import GlobalClipFusedRMSprop, build_optimizer

ROOT = Path(__file__).resolve().parents[1]
IMAGENET_RECIPES = [
    "inception_v4_imagenet",
    "inception_resnet_v1_imagenet",
    "inception_resnet_v2_imagenet",
]
STEPS_PER_EPOCH = 100


def test_bundled_recipes_are_found_by_name_and_load():
    finetuning = {
        "finetune_inception_resnet_v2",
        "finetune_inception_v4",
        "digits_0_4",
        "digits_5_9",
    }
    paper = {
        "paper_speedup_inception_v4",
        "paper_speedup_inception_resnet_v2",
        "paper_residual_scaling",
    }
    assert set(bundled_recipes()) == {"quickstart", *IMAGENET_RECIPES, *finetuning, *paper}
    for name in bundled_recipes():
        recipe = load_recipe(name)
        assert recipe.name == name and recipe.description


def test_the_finetuning_recipes_run_slims_two_phases_from_the_named_weights():
    for network in ("inception_resnet_v2", "inception_v4"):
        recipe = load_recipe(f"finetune_{network}")
        assert (recipe.model.network, recipe.model.weights) == (network, "imagenet")
        head, main = training_phases(recipe)
        assert (head.trainable, head.learning_rate, head.epochs) == ("head", 0.01, 10)
        assert (main.trainable, main.learning_rate, main.epochs) == ("all", 1e-4, 5)
        assert recipe.training.steps_per_epoch * head.epochs == 1000  # slim's steps
        assert recipe.data.source == "folder" and recipe.data.validation_split == 0.1
    transfer = load_recipe("digits_5_9")
    assert transfer.model.weights == load_recipe("digits_0_4").run_dir.as_posix()
    assert set(transfer.data.classes).isdisjoint(load_recipe("digits_0_4").data.classes)


def test_top_level_recipes_folder_is_the_packaged_one():
    assert sorted(path.name for path in (ROOT / "recipes").glob("*.toml")) == sorted(
        path.name for path in bundled_recipes().values()
    )


@pytest.mark.parametrize("name", IMAGENET_RECIPES)
def test_imagenet_recipes_build_the_papers_optimizer_and_schedule(name):
    recipe = load_recipe(name)
    optimizer = build_optimizer(recipe, STEPS_PER_EPOCH)
    schedule = optimizer._learning_rate

    def rate(step):
        return float(schedule(step))

    # 0.045, multiplied by 0.94 every two epochs, in steps (staircase).
    assert rate(0) == pytest.approx(0.045)
    assert rate(2 * STEPS_PER_EPOCH - 1) == pytest.approx(0.045)
    assert rate(2 * STEPS_PER_EPOCH) == pytest.approx(0.045 * 0.94)
    assert rate(4 * STEPS_PER_EPOCH) == pytest.approx(0.045 * 0.94**2)
    assert isinstance(optimizer, keras.optimizers.RMSprop)
    assert (optimizer.rho, optimizer.momentum, optimizer.epsilon) == (0.9, 0.9, 1.0)
    assert optimizer.global_clipnorm == 2.0
    assert optimizer.use_ema and optimizer.ema_momentum == 0.9999
    assert recipe.training.label_smoothing == 0.1
    assert recipe.training.weight_decay == 4e-5
    assert recipe.training.batch_size == 32
    assert recipe.model.aux_logits and recipe.model.aux_loss_weight == 0.4


@pytest.mark.parametrize("momentum", [0.9, 0.0])
def test_the_recipe_optimizer_updates_as_keras_rmsprop_does(momentum):
    """Three steps against Keras's RMSprop with the same settings (no clipping, no average). With
    momentum the update is TensorFlow's fused RMSProp kernel; without, Keras's own code."""
    rng = np.random.default_rng(0)
    initial = rng.normal(size=(3, 4)).astype("float32")
    gradients = [tf.constant(rng.normal(size=(3, 4)).astype("float32")) for _ in range(3)]
    settings = dict(learning_rate=0.045, rho=0.9, momentum=momentum, epsilon=1.0)
    finals, op_types = [], set()
    for optimizer in (GlobalClipFusedRMSprop(**settings), keras.optimizers.RMSprop(**settings)):
        variable = keras.Variable(initial)
        optimizer.build([variable])
        # Called within this iteration only, so the loop variables are the ones meant.
        step = tf.function(lambda gradient: optimizer.apply([gradient], [variable]))  # noqa: B023
        for gradient in gradients:
            step(gradient)
        finals.append(variable.numpy())
        op_types |= {
            op.type for op in step.get_concrete_function(gradients[0]).graph.get_operations()
        }
    np.testing.assert_allclose(finals[0], finals[1], rtol=1e-6, atol=1e-7)
    assert np.abs(finals[0] - initial).min() > 1e-3  # the steps did move the variable
    assert ("ResourceApplyRMSProp" in op_types) == (momentum > 0)


@pytest.mark.subprocess
def test_a_model_compiled_with_the_recipe_optimizer_loads_after_importing_the_package(tmp_path):
    model = keras_inception.InceptionResNetV2(input_shape=(75, 75, 3), depths=(0, 0, 1), classes=3)
    model.compile(optimizer=build_optimizer(load_recipe("quickstart"), STEPS_PER_EPOCH), loss="mse")
    path = tmp_path / "compiled.keras"
    model.save(path)
    # A fresh interpreter has registered nothing but what `import keras_inception` registers.
    load = f"import keras, keras_inception; keras.models.load_model({str(path)!r}); print('loaded')"
    result = subprocess.run(
        [sys.executable, "-c", load], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "loaded" in result.stdout, result.stderr[-2000:]


def write(tmp_path, text, name="run.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, key",
    [
        ("learning_rat = 0.1", "learning_rat"),
        ("[optimizer]\nlearning_rat = 0.1", "optimizer.learning_rat"),
        ("[optimiser]\nlearning_rate = 0.1", "optimiser"),
        ("[optimizer]\nlearning_rate = 'fast'", "optimizer.learning_rate"),
        ("[optimizer]\nlearning_rate = -0.1", "optimizer.learning_rate"),
        ("[training]\nepochs = 2.5", "training.epochs"),
        ("[training]\nprecision = 'float8'", "training.precision"),
        ("[model]\ndepths = [1, 1]", "model.depths"),
        (
            "[model]\nnetwork = 'inception_v4'\nresidual_scale = [0.1, 0.1, 0.1]",
            "model.residual_scale",
        ),
        ("[model]\naux_logits = true\ninput_size = 75", "model.aux_logits"),
        ("[detector]\nthreshold = 1.5", "detector.threshold"),
        ("[optimizer]\nname = 'adam'", "optimizer.name"),
        ("[optimizer]\nepsilon = 0", "optimizer.epsilon"),
        ("[optimizer]\nnesterov = true", "optimizer.nesterov"),  # rmsprop has none
        ("[optimizer]\nname = 'sgd'\nnesterov = 1", "optimizer.nesterov"),
        ("[optimizer]\nname = 'adamw'\ndecoupled_weight_decay = -1", "optimizer.decoupled_weight"),
        ("[schedule]\nname = 'linear'", "schedule.name"),
        ("[schedule]\nwarmup_epochs = 1", "schedule.warmup_epochs"),  # exponential has none
        ("[schedule]\nalpha = 0.1", "schedule.alpha"),
        ("[schedule]\nname = 'cosine'\nwarmup_epochs = -1", "schedule.warmup_epochs"),
        ("[schedule]\nname = 'cosine'\nalpha = 1.5", "schedule.alpha"),
        ("[data]\nsource = 'floppy'", "source"),
        ("model = 3", "model"),
    ],
)
def test_invalid_recipes_name_the_key_and_the_file(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    assert key in str(error.value)
    assert str(path) in str(error.value)


def test_not_toml_names_the_file(tmp_path):
    path = write(tmp_path, "[optimizer\n")
    with pytest.raises(RecipeError, match="not valid TOML") as error:
        load_recipe(path)
    assert str(path) in str(error.value)


def test_unknown_recipe_name_lists_the_bundled_ones():
    with pytest.raises(RecipeError, match="quickstart"):
        load_recipe("no_such_recipe")


def test_overrides_take_toml_values_and_plain_text():
    recipe = load_recipe(
        "quickstart",
        [
            "optimizer.learning_rate=0.01",
            "model.depths=[2, 1, 1]",
            "training.deterministic=true",
            "output=runs/elsewhere",
            'data.source="digits"',
        ],
    )
    assert recipe.optimizer.learning_rate == 0.01
    assert recipe.model.depths == (2, 1, 1)
    assert recipe.training.deterministic is True
    assert recipe.run_dir == Path("runs/elsewhere")
    assert load_recipe("quickstart").run_dir == Path("runs/quickstart")


@pytest.mark.parametrize(
    "override, message",
    [
        ("optimizer.learnin_rate=0.01", "optimizer.learnin_rate"),
        ("optimiser.learning_rate=0.01", "optimiser"),
        ("optimizer.learning_rate=0", "optimizer.learning_rate"),
        ("optimizer.learning_rate", "KEY=VALUE"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe("quickstart", [override])


def test_unknown_optimizer_and_schedule_names_list_the_choices():
    with pytest.raises(
        RecipeError, match=r"optimizer.name must be one of \('rmsprop', 'sgd', 'adamw'\)"
    ):
        load_recipe("quickstart", ["optimizer.name=adam"])
    with pytest.raises(
        RecipeError, match=r"schedule.name must be one of \('exponential', 'cosine'\)"
    ):
        load_recipe("quickstart", ["schedule.name=linear"])


def test_the_new_optimizer_and_schedule_keys_take_their_defaults_and_read_back(tmp_path):
    """Left out, they are the paper's method as before: RMSProp (epsilon 1.0, see
    test_optimizer.py) and the exponential schedule. Set, they read back equal."""
    recipe = load_recipe(write(tmp_path, "[data]\nsource = 'digits'"))
    assert (recipe.optimizer.name, recipe.optimizer.epsilon) == ("rmsprop", None)
    assert (recipe.optimizer.nesterov, recipe.optimizer.decoupled_weight_decay) == (False, 0.004)
    assert (recipe.schedule.name, recipe.schedule.warmup_epochs, recipe.schedule.alpha) == (
        "exponential",
        0.0,
        0.0,
    )
    assert "epsilon" not in recipe_to_toml(recipe)  # left out, it stays out
    for overrides in (
        ["optimizer.name=sgd", "optimizer.nesterov=true"],
        ["optimizer.name=adamw", "optimizer.decoupled_weight_decay=0.01"],
        ["schedule.name=cosine", "schedule.warmup_epochs=2.5", "schedule.alpha=0.01"],
    ):
        recipe = load_recipe("quickstart", overrides)
        path = write(tmp_path, recipe_to_toml(recipe), "quickstart.toml")
        assert load_recipe(path) == recipe


def test_resolved_recipe_reads_back_equal(tmp_path):
    recipe = load_recipe("inception_resnet_v2_imagenet", ["optimizer.learning_rate=1e-5"])
    path = write(tmp_path, recipe_to_toml(recipe), "inception_resnet_v2_imagenet.toml")
    assert load_recipe(path) == recipe


def test_false_turns_off_averaging_and_clipping_and_reads_back(tmp_path):
    off = ["optimizer.ema_momentum=false", "optimizer.global_clipnorm=false"]
    recipe = load_recipe("quickstart", off)
    assert recipe.optimizer.ema_momentum is None and recipe.optimizer.global_clipnorm is None
    path = write(tmp_path, recipe_to_toml(recipe), "quickstart.toml")
    assert load_recipe(path) == recipe
    with pytest.raises(RecipeError, match="training.deterministic must be bool"):
        load_recipe("quickstart", ["training.deterministic=0.5"])


def test_finetune_and_weights_keys_read_back(tmp_path):
    recipe = load_recipe(
        "quickstart",
        [
            'model.weights="runs/elsewhere"',
            'finetune.trainable=["Mixed_7a", "Block8", "Logits"]',
            "finetune.head_epochs=2",
            "finetune.head_learning_rate=0.01",
        ],
    )
    assert recipe.finetune.trainable == ("Mixed_7a", "Block8", "Logits")
    path = write(tmp_path, recipe_to_toml(recipe), "quickstart.toml")
    assert load_recipe(path) == recipe
    for override, message in [
        ('finetune.trainable="some"', "finetune.trainable must be one of"),
        ("finetune.trainable=[]", "non-empty list"),
        ("finetune.head_epochs=8", "fewer than training.epochs"),
        ("finetune.head_learning_rate=0", "finetune.head_learning_rate must be > 0"),
    ]:
        with pytest.raises(RecipeError, match=message):
            load_recipe("quickstart", [override])


@pytest.mark.slow
@pytest.mark.subprocess
def test_wheel_ships_the_recipes(tmp_path):
    """`pip install .` gets the recipes as package data, so they are found by name there too."""
    source = tmp_path / "source"  # a clean copy: no stale build/ folder can supply the files
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", "build", "runs", "*.egg-info", "__pycache__"),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("keras_inception-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for recipe in bundled_recipes().values():
        assert f"keras_inception/recipes/{recipe.name}" in names


def test_an_overridden_value_is_blamed_on_the_override_not_the_file():
    with pytest.raises(RecipeError) as error:
        load_recipe("quickstart", ["seed=-1"])
    assert str(error.value).startswith("--set seed=-1: seed must be an integer in [0, 2**32)")
    with pytest.raises(RecipeError, match=r"^--set model.depths=\[1, 1, 0\]: model.depths"):
        load_recipe("quickstart", ["model.depths=[1, 1, 0]"])


def test_one_residual_scale_serves_all_three_block_types():
    recipe = load_recipe("quickstart", ["model.residual_scale=0.5"])
    assert recipe.model.residual_scale == 0.5
    model = build_model(recipe.model, 10)
    for block in ("Repeat__block35_1__Sum", "Repeat_1__block17_1__Sum"):
        assert model.get_layer(block).scale == 0.5
    with pytest.raises(RecipeError, match="model.residual_scale must be float or a list of 3"):
        load_recipe("quickstart", ['model.residual_scale="half"'])
