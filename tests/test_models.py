"""The three factories: shapes, argument checks, keras.applications parity, saving, backends."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import FAST_XLA_COMPILE, TINY_DEPTHS, network_params, randomise, run

import keras_inception
from keras_inception import InceptionResNetV1, InceptionResNetV2, InceptionV4, ResidualScale
from keras_inception.models import forward_flops

TINY = dict(depths=TINY_DEPTHS)
# Channels of the features before global pooling, per network (slim's, timm's num_features).
FEATURE_CHANNELS = {"inception_v4": 1536, "inception_resnet_v1": 1792, "inception_resnet_v2": 1536}


# --------------------------------------------------------------------------- keras.applications


@pytest.mark.slow
def test_inception_resnet_v2_has_the_parameter_count_of_keras_applications():
    ours = InceptionResNetV2()
    reference = keras.applications.InceptionResNetV2(weights=None)
    assert ours.count_params() == reference.count_params()
    ours_notop = InceptionResNetV2(include_top=False)
    reference_notop = keras.applications.InceptionResNetV2(weights=None, include_top=False)
    assert ours_notop.count_params() == reference_notop.count_params()


@pytest.mark.slow
def test_keras_applications_weights_load_and_give_the_same_outputs(tmp_path, images):
    keras.utils.set_random_seed(7)
    reference = keras.applications.InceptionResNetV2(
        weights=None, input_shape=(75, 75, 3), classifier_activation=None
    )
    randomise(reference)
    path = str(tmp_path / "keras_applications.weights.h5")
    reference.save_weights(path)

    ours = InceptionResNetV2(input_shape=(75, 75, 3), classifier_activation=None, weights=path)
    expected = run(reference, images)
    np.testing.assert_allclose(run(ours, images), expected, atol=1e-5, rtol=0)
    # The comparison would catch a silent non-load: fresh weights give other logits.
    fresh = InceptionResNetV2(input_shape=(75, 75, 3), classifier_activation=None)
    assert np.abs(run(fresh, images) - expected).max() > 1e-3


def test_weights_of_another_network_are_refused_with_the_file_named(tmp_path):
    path = str(tmp_path / "v4.weights.h5")
    InceptionV4(input_shape=(75, 75, 3), **TINY).save_weights(path)
    with pytest.raises(ValueError, match="v4.weights.h5"):
        InceptionResNetV2(input_shape=(75, 75, 3), weights=path, **TINY)


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("spec", network_params())
@pytest.mark.parametrize("size, grid", [(299, 8), (75, 1)])
def test_output_shapes_for_every_pooling(spec, size, grid):
    shape = (size, size, 3)
    channels = FEATURE_CHANNELS[spec.name]
    # Depth does not change shapes, so the pooling variants use a small body.
    assert spec.factory(input_shape=shape, classes=10).output_shape == (None, 10)
    assert spec.factory(include_top=False, input_shape=shape).output_shape == (
        None,
        grid,
        grid,
        channels,
    )
    for pooling in ("avg", "max"):
        model = spec.factory(include_top=False, input_shape=shape, pooling=pooling, **TINY)
        assert model.output_shape == (None, channels)


@pytest.mark.parametrize("spec", network_params())
def test_forward_pass_at_the_minimum_size(spec, images):
    model = spec.factory(input_shape=(75, 75, 3), classes=5, **TINY)
    probabilities = model.predict(images, verbose=0)
    assert probabilities.shape == (2, 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_no_top_accepts_any_size_and_an_input_tensor():
    model = InceptionResNetV2(include_top=False, pooling="avg", **TINY)
    assert model.input_shape == (None, None, None, 3)
    features = model.predict(np.zeros((1, 101, 83, 3), "float32"), verbose=0)
    assert features.shape == (1, 1536)

    tensor = keras.Input((80, 80, 3))
    model = InceptionV4(input_tensor=tensor, classes=3, **TINY)
    assert model.inputs[0] is tensor and model.output_shape == (None, 3)


@pytest.mark.parametrize("spec", network_params())
def test_aux_logits_is_a_second_output(spec):
    model = spec.factory(input_shape=(160, 160, 3), classes=7, aux_logits=True, **TINY)
    assert [tuple(shape) for shape in model.output_shape] == [(None, 7), (None, 7)]
    assert model.get_layer("AuxLogits__Conv2d_1b_1x1").output.shape[-1] == 128


def test_inception_resnet_v1_embedding_head_gives_unit_vectors(images):
    model = InceptionResNetV1(input_shape=(75, 75, 3), embedding_size=128, **TINY)
    embeddings = model.predict(images, verbose=0)
    assert embeddings.shape == (2, 128)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)


def test_default_depths_give_the_public_block_counts():
    def count(model, prefix):
        return sum(
            layer.name.startswith(prefix) and layer.name.count("__") == 1
            for layer in model.layers
            if isinstance(layer, (ResidualScale, keras.layers.Activation))
        )

    model = InceptionResNetV2(include_top=False)
    assert (count(model, "Repeat__block35_"), count(model, "Repeat_1__block17_")) == (10, 20)
    assert count(model, "Repeat_2__block8_") == 9 and model.get_layer("Block8") is not None
    v4 = InceptionV4(include_top=False)
    names = {layer.name for layer in v4.layers}
    assert {"Mixed_5e", "Mixed_6h", "Mixed_7d"} <= names and "Mixed_5f" not in names


def test_mixed_precision_keeps_float32_outputs(images):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = InceptionResNetV2(input_shape=(75, 75, 3), classes=4, **TINY)
        assert model.get_layer("Conv2d_1a_3x3").compute_dtype == "bfloat16"
        assert model.predict(images, verbose=0).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("spec", network_params())
def test_forward_flops_agree_with_tensorflows_profiler(spec):
    """Our count from the layers against TensorFlow's own count of the traced graph's
    convolutions and matrix products (its other ops are not what forward_flops counts)."""
    model = spec.factory(input_shape=(75, 75, 3), **TINY)
    graph = tf.function(model).get_concrete_function(tf.TensorSpec((1, 75, 75, 3))).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    options["account_type_regexes"] = ["Conv2D", "MatMul"]
    profiled = tf.compat.v1.profiler.profile(graph, options=options).total_float_ops
    assert profiled > 0 and forward_flops(model) == profiled


# --------------------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_shape=(74, 74, 3)), "at least 75"),
        (dict(input_shape=(None, None, 3)), "static input size"),
        (dict(input_shape=(299, 299)), r"\(height, width, channels\).*2 elements"),
        (dict(input_shape=(299, 299, 1)), "3 channels"),
        (dict(residual_scale=0.0), r"residual_scale must be in \(0, 1\]"),
        (dict(residual_scale=1.5), r"residual_scale must be in \(0, 1\]"),
        (dict(residual_scale=(0.1, 0.2)), "one number or three"),
        (dict(residual_scale=(0.1, -0.2, 0.3)), r"residual_scale\[1\] \(block B\)"),
        (dict(residual_scale="0.1"), "must be a number"),
        (dict(depths=(1, 1, 0)), r"depths\[2\] \(stage C\) must be at least 1"),
        (dict(depths=(1, 1)), "three integers"),
        (dict(pooling="mean"), "pooling must be one of"),
        (dict(classes=0), "classes must be a positive integer"),
        (dict(dropout_rate=1.0), r"dropout_rate must be in \[0, 1\)"),
        (dict(weights="imagenet21k"), "The `weights` argument should be either"),
        (dict(weights="/no/such/file.weights.h5"), "No such file"),
        (dict(include_top=False, aux_logits=True), "aux_logits=True needs include_top=True"),
        (dict(input_shape=(75, 75, 3), aux_logits=True), "at least 5x5"),
    ],
)
def test_bad_arguments_raise_a_value_error_naming_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InceptionResNetV2(**kwargs)


def test_inception_v4_refuses_depths_past_slim_naming():
    with pytest.raises(ValueError, match="at most 25"):
        InceptionV4(depths=(26, 1, 1))


# --------------------------------------------------------------------------- residual scale, saving


def test_residual_scale_per_block_type_changes_the_output_and_is_saved(tmp_path, images):
    keras.utils.set_random_seed(3)
    shape = dict(input_shape=(75, 75, 3), classifier_activation=None, **TINY)
    base = InceptionResNetV2(residual_scale=(0.17, 0.10, 0.20), **shape)
    randomise(base)
    weights = str(tmp_path / "base.weights.h5")
    base.save_weights(weights)
    changed = InceptionResNetV2(residual_scale=(0.17, 0.30, 0.20), weights=weights, **shape)

    assert np.abs(run(base, images) - run(changed, images)).max() > 1e-4
    assert changed.get_layer("Repeat__block35_1__Sum").scale == pytest.approx(0.17)
    assert changed.get_layer("Repeat_1__block17_1__Sum").scale == pytest.approx(0.30)
    assert changed.get_layer("Block8").scale == 1.0

    path = str(tmp_path / "changed.keras")
    changed.save(path)
    restored = keras.models.load_model(path)
    assert restored.get_layer("Repeat_1__block17_1__Sum").scale == pytest.approx(0.30)


@pytest.mark.parametrize("spec", network_params())
def test_keras_file_round_trip_in_safe_mode(spec, tmp_path, images):
    keras.utils.set_random_seed(5)
    model = spec.factory(input_shape=(75, 75, 3), classifier_activation=None, **TINY)
    randomise(model)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(run(restored, images), run(model, images))


# --------------------------------------------------------------------------- other backends

BACKEND_SCRIPT = textwrap.dedent(
    """
    import keras, numpy as np
    import keras_inception as ki
    assert keras.backend.backend() == "{backend}"
    x = np.random.default_rng(0).uniform(-1, 1, (1, 75, 75, 3)).astype("float32")
    for spec in ki.models.networks():
        model = spec.factory(input_shape=(75, 75, 3), classes=3, depths=(1, 1, 1))
        out = keras.ops.convert_to_numpy(model(x))
        assert out.shape == (1, 3) and abs(out.sum() - 1) < 1e-5, out
        print(spec.name, "ok")
    """
)


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize(
    "backend, module",
    [("jax", "jax"), pytest.param("torch", "torch", marks=pytest.mark.needs_torch)],
)
def test_forward_pass_under_other_backends(backend, module):
    pytest.importorskip(module, reason=f"the {backend} backend needs {module} installed")
    env = {**os.environ, "KERAS_BACKEND": backend, "XLA_FLAGS": FAST_XLA_COMPILE}
    result = subprocess.run(
        [sys.executable, "-c", BACKEND_SCRIPT.format(backend=backend)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count(" ok") == len(network_params())


# --------------------------------------------------------------------------- ImageNet helpers


def test_preprocess_input_scales_to_minus_one_one():
    scaled = keras_inception.preprocess_input(np.array([0, 127.5, 255], "float32"))
    np.testing.assert_allclose(scaled, [-1.0, 0.0, 1.0])
    tensor = keras_inception.preprocess_input(keras.ops.convert_to_tensor([[255.0]]))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(tensor), [[1.0]])


def test_decode_predictions_for_1000_and_1001_classes():
    scores = np.zeros((1, 1000), "float32")
    scores[0, [1, 2]] = [0.9, 0.1]
    (top,) = keras_inception.decode_predictions(scores, top=2)
    assert top == [
        ("n01443537", "goldfish", pytest.approx(0.9)),
        ("n01484850", "great_white_shark", pytest.approx(0.1)),
    ]

    slim = np.zeros((1, 1001), "float32")
    slim[0, 2] = 1.0  # slim's index 2 is class 1 once the background at 0 is dropped
    assert keras_inception.decode_predictions(slim, top=1)[0][0][:2] == ("n01443537", "goldfish")
    slim[0, 0] = 2.0
    assert keras_inception.decode_predictions(slim, top=1)[0][0][:2] == ("background", "background")

    with pytest.raises(ValueError, match=r"\(samples, 1000\)"):
        keras_inception.decode_predictions(np.zeros((1, 10)))


def test_class_names_agree_with_timm():
    timm_info = pytest.importorskip("timm.data", reason="timm is needed for the cross-check")
    info = timm_info.ImageNetInfo()
    index = keras_inception.imagenet.class_index()
    assert [wnid for wnid, _ in index] == [info.index_to_label_name(i) for i in range(1000)]
    for i, (_, name) in enumerate(index):
        description = info.index_to_description(i).replace(" ", "_")
        assert description.startswith(name), (i, name, description)
