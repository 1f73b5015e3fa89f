"""The seams the rest of the package builds on: the network registry, dependencies that run one
way, one rule in one place (the factories' checks, the error types, the central crop and the
pixel scaling), the backbone feature maps, and the run folder."""

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import TINY_DEPTHS, images, network_params

import keras_inception_cli as cli
from keras_inception import preprocess_input
from keras_inception.data import DataConfig, eval_preprocessing
from keras_inception.errors import ConfigError
from keras_inception.evaluation import CentralCrop, Ensemble
from keras_inception.models import feature_model, get_network, network_names
from keras_inception.models.application import MIN_AUX_INPUT_SIZE, feature_map_size
from keras_inception.models.features import end_point_layers
from keras_inception.models.registry import FEATURE_STRIDES
from keras_inception.training import (
    RecipeError,
    build_model,
    compile_for_recipe,
    load_recipe,
)
from keras_inception.training.recipe import TrainingConfig
from keras_inception.training.trainer import final_model

SUBPACKAGES = [
    "keras_inception.models",
    "keras_inception.weights",
    "keras_inception.data",
    "keras_inception.training",
    "keras_inception.evaluation",
    "keras_inception.plotting",
    "keras_inception_cli",
]

# --------------------------------------------------------------------------- dependencies


@pytest.mark.subprocess
@pytest.mark.parametrize("module", SUBPACKAGES)
def test_each_subpackage_imports_first_in_a_fresh_interpreter(module):
    """No import cycle hides behind the order the package root happens to import things in; and
    importing the models never loads a converter."""
    script = (
        f"import sys, {module}\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('keras_inception.weights'))\n"
        "print('weights loaded:', loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    if module != "keras_inception.weights":
        assert "weights loaded: []" in result.stdout, result.stdout


def test_the_models_import_nothing_from_the_converters():
    folder = Path(__file__).parents[1] / "keras_inception" / "models"
    imports = [
        line.strip()
        for path in folder.glob("*.py")
        for line in path.read_text().splitlines()
        if line.strip().startswith(("import ", "from "))
    ]
    assert imports and not [line for line in imports if "keras_inception.weights" in line]


# --------------------------------------------------------------------------- the registry


def test_the_registry_holds_each_network_once_under_its_factorys_default_name():
    assert len(set(network_names())) == len(network_names()) >= 3
    for name in network_names():
        spec = get_network(name)
        assert spec.factory.__defaults__[7] == name  # the factory's `name` argument
    with pytest.raises(ConfigError, match="network must be one of"):
        get_network("inception_v5")


@pytest.mark.parametrize("spec", network_params())
@pytest.mark.parametrize("size", [75, 106, 139, 299])
def test_feature_maps_have_the_strides_and_sizes_the_arithmetic_gives(spec, size):
    model = feature_model(spec.name, input_shape=(size, size, 3), depths=TINY_DEPTHS)
    assert list(model.output) == ["P2", "P3", "P4", "P5"]
    for stride in FEATURE_STRIDES:
        shape = model.output[f"P{stride.bit_length() - 1}"].shape
        assert shape[1] == shape[2] == feature_map_size(size, stride), (stride, shape)


@pytest.mark.parametrize("spec", network_params())
def test_feature_maps_equal_the_full_models_intermediate_outputs(spec):
    keras.utils.set_random_seed(0)
    full = spec.factory(input_shape=(99, 99, 3), classes=4, depths=(2, 1, 2))
    features = feature_model(spec.name, input_shape=(99, 99, 3), depths=(2, 1, 2))
    for layer in features.layers:  # the same weights, layer by layer
        if layer.weights:
            layer.set_weights(full.get_layer(layer.name).get_weights())
    x = images(size=99)
    ends = end_point_layers(full, spec.name)
    expected = keras.Model(full.input, {s: layer.output for s, layer in ends.items()})(x)
    got = features(x)
    for stride in FEATURE_STRIDES:
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(got[f"P{stride.bit_length() - 1}"]),
            keras.ops.convert_to_numpy(expected[stride]),
        )
    # The stride-32 end point is what the classifier pools.
    assert ends[32].output is full.get_layer("Logits__AvgPool").input


def test_the_aux_heads_minimum_input_is_where_the_factory_starts_to_accept_it():
    spec = get_network("inception_resnet_v2")
    build = dict(classes=3, aux_logits=True, depths=TINY_DEPTHS)
    model = spec.factory(input_shape=(MIN_AUX_INPUT_SIZE,) * 2 + (3,), **build)
    assert model.get_layer("AuxLogits__Conv2d_1a_3x3").output.shape[1] == 1
    with pytest.raises(ConfigError, match=f"at least {MIN_AUX_INPUT_SIZE}x"):
        spec.factory(input_shape=(MIN_AUX_INPUT_SIZE - 1,) * 2 + (3,), **build)


# --------------------------------------------------------------------------- one rule, one place


def test_a_recipe_is_refused_by_the_factorys_own_depth_limit_before_any_data_is_read():
    overrides = [
        'model.network="inception_v4"',
        "model.depths=[26, 1, 1]",
        'data.source="tfrecord"',
        'data.train="/no/such/shards-*"',
        "data.num_classes=10",
    ]
    with pytest.raises(RecipeError, match=r"model\.depths.*at most 25") as error:
        load_recipe("quickstart", overrides)
    assert error.value.key == "model.depths"


def test_the_recipe_takes_the_embedding_head_where_the_network_has_one():
    recipe = load_recipe(
        "quickstart", ['model.network="inception_resnet_v1"', "model.embedding_size=32"]
    )
    # Trained through a softmax over the identities on the embedding; saved as the embedding.
    model = build_model(recipe.model, 10)
    assert model.output_shape == (None, 10)
    assert final_model(model).output_shape == (None, 32)
    with pytest.raises(RecipeError, match="model.embedding_size"):
        load_recipe("quickstart", ["model.embedding_size=32"])  # Inception-ResNet-v2's recipe


@pytest.mark.parametrize(
    "make",
    [
        lambda: DataConfig(source=3),
        lambda: DataConfig(min_crop_area="big"),
        lambda: TrainingConfig(batch_size="8"),
        lambda: TrainingConfig(epochs=2.5),
        lambda: get_network("inception_v4").factory(depths=(1, 1, "1")),
    ],
)
def test_a_bad_setting_is_a_config_error_wherever_it_is_made(make):
    with pytest.raises(ConfigError) as error:
        make()
    assert error.value.key  # it names the setting


def test_weight_decay_survives_saving_and_loading(tmp_path):
    recipe = load_recipe("quickstart", ["model.depths=[0, 0, 1]"])
    model = build_model(recipe.model, 10)
    compile_for_recipe(model, recipe, steps_per_epoch=10)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert len(model.losses) > 0
    np.testing.assert_allclose(float(sum(reloaded.losses)), float(sum(model.losses)), rtol=1e-6)


def test_training_validation_evaluate_and_predict_share_one_central_crop_and_scaling():
    image = np.random.default_rng(2).integers(0, 256, (123, 171, 3), dtype=np.uint8)
    validation = eval_preprocessing((75, 75))(tf.constant(image)).numpy()
    evaluation = preprocess_input(CentralCrop()(image, (75, 75)).numpy())[0]
    np.testing.assert_array_equal(validation, evaluation)
    model = get_network("inception_resnet_v2").factory(
        input_shape=(75, 75, 3), classes=3, depths=TINY_DEPTHS
    )
    predicted = Ensemble(model).predict([image], "single")
    np.testing.assert_allclose(predicted, model(validation[None]).numpy(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- the command line


def test_every_error_type_maps_to_its_exit_status_in_one_line(tmp_path, capsys, monkeypatch):
    def statuses():
        return capsys.readouterr().err.strip().splitlines()

    assert cli.main(["train", "quickstart", "--set", "training.epoch=3"]) == cli.BAD_INPUT_STATUS
    (line,) = statuses()
    assert "training.epoch" in line

    missing = str(tmp_path / "missing.keras")
    assert cli.main(["predict", "--model", missing, "image.png"]) == cli.BAD_INPUT_STATUS
    (line,) = statuses()
    assert missing in line

    def needs_a_package(*args, **kwargs):
        raise ImportError("Reading x.pth needs torch: pip install torch")

    monkeypatch.setattr("keras_inception.weights.convert", needs_a_package)
    output = str(tmp_path / "out.weights.h5")
    status = cli.main(["convert", "x.pth", "inception_v4", output])
    assert status == cli.MISSING_DEPENDENCY_STATUS
    (line,) = statuses()
    assert "pip install torch" in line


def test_a_missing_optional_package_is_an_import_error_with_the_install_line(monkeypatch):
    from keras_inception.data.sources import open_source

    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(ImportError, match="pip install tensorflow-datasets"):
        open_source(DataConfig(source="tfds", tfds_name="mnist"))


def test_networks_lists_each_registered_network(capsys):
    assert cli.main(["networks"]) == 0
    output = capsys.readouterr().out
    assert [line.split()[0] for line in output.splitlines()] == list(network_names())
