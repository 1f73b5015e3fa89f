"""The inference function: batch norms folded into the convolutions, weights frozen, answers as
the model does; and the evaluation member that switches to it."""

import keras
import numpy as np
import pytest
from helpers import SMALL, TINY_DEPTHS, images, network_params, randomise, run

from keras_inception.evaluation import Member
from keras_inception.evaluation.ensemble import INFERENCE_FUNCTION_AFTER
from keras_inception.models import (
    FoldedBatchNormalization,
    ResidualScale,
    get_network,
    inference_function,
    inference_model,
)


def small_network(spec, **kwargs):
    """A randomised network of `spec` at 75x75 with one block per stage, returning logits."""
    model = spec.factory(
        weights=None,
        input_shape=(SMALL, SMALL, 3),
        depths=TINY_DEPTHS,
        classes=5,
        classifier_activation=None,
        **kwargs,
    )
    return randomise(model)


def layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


@pytest.mark.parametrize("spec", network_params())
def test_every_batch_norm_and_residual_scale_folds_into_its_convolution(spec):
    model = small_network(spec)
    folded = inference_model(model)
    assert not layers_of(folded, keras.layers.BatchNormalization)
    assert len(layers_of(folded, FoldedBatchNormalization)) == len(
        layers_of(model, keras.layers.BatchNormalization)
    )
    assert all(conv.use_bias for conv in layers_of(folded, keras.layers.Conv2D))
    assert not layers_of(folded, ResidualScale)  # each scaled sum now a plain Add
    # Conv kernel + BN's beta, mean and variance become kernel + bias: two weights fewer each.
    assert len(folded.weights) == len(model.weights) - 2 * len(
        layers_of(folded, FoldedBatchNormalization)
    )
    x = images(3)
    np.testing.assert_allclose(run(folded, x), run(model, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec", network_params())
def test_the_inference_function_answers_as_the_model(spec):
    model = small_network(spec)
    x = images(3)
    np.testing.assert_allclose(inference_function(model)(x), run(model, x), rtol=1e-4, atol=1e-5)


def test_the_inference_function_holds_the_weights_it_was_built_with():
    model = small_network(get_network("inception_v4"))
    x = images(2)
    infer, before = inference_function(model), run(model, x)
    randomise(model, seed=1)
    np.testing.assert_allclose(infer(x), before, rtol=1e-4, atol=1e-5)
    assert not np.allclose(run(model, x), before, atol=1e-3)


def test_under_mixed_precision_it_is_as_close_to_float32_as_the_model_is():
    spec = get_network("inception_resnet_v2")
    x = images(4)
    reference = run(small_network(spec), x)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = small_network(spec)
        mixed, inferred = run(model, x), inference_function(model)(x)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert inferred.dtype == "float32"
    scale = np.abs(reference).max()
    assert np.abs(mixed - reference).max() < 0.02 * scale  # bfloat16's own error
    assert np.abs(inferred - reference).max() < 0.02 * scale
    np.testing.assert_array_equal(inferred.argmax(-1), reference.argmax(-1))


@pytest.mark.parametrize("read_elsewhere, activation", [(True, None), (False, "relu")])
def test_a_batch_norm_stays_where_folding_would_change_the_answer(read_elsewhere, activation):
    """A convolution whose output another layer reads too, or with an activation of its own."""
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(4, 3, use_bias=False, activation=activation, name="conv")(inputs)
    normed = keras.layers.BatchNormalization(name="norm")(features)
    outputs = keras.layers.Concatenate()([normed, features]) if read_elsewhere else normed
    model = randomise(keras.Model(inputs, outputs))
    folded = inference_model(model)
    assert isinstance(folded.get_layer("norm"), keras.layers.BatchNormalization)
    assert not folded.get_layer("conv").use_bias
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(run(folded, x), run(model, x), rtol=1e-5, atol=1e-6)


def test_a_folded_model_saves_and_loads(tmp_path):
    folded = inference_model(small_network(get_network("inception_resnet_v1")))
    folded.save(tmp_path / "folded.keras")
    loaded = keras.saving.load_model(tmp_path / "folded.keras")
    x = images(2)
    np.testing.assert_allclose(run(loaded, x), run(folded, x), rtol=1e-6, atol=1e-6)


def test_a_member_switches_to_the_inference_function_after_its_crops():
    model = small_network(get_network("inception_v4"))
    pixels = np.random.default_rng(0).integers(0, 256, (6, SMALL, SMALL, 3)).astype("float32")
    keras_only = Member(model, inference_after=None)
    switching = Member(model, inference_after=3)
    for start in (0, 3):  # the second call comes after 3 crops: run by the inference function
        crops = pixels[start : start + 3]
        np.testing.assert_allclose(
            switching.probabilities(crops), keras_only.probabilities(crops), rtol=1e-4, atol=1e-6
        )
    assert switching._inference is not None and keras_only._inference is None


def test_a_member_on_the_cpu_switches_after_its_default_crops(monkeypatch):
    model = keras.Sequential([keras.Input((SMALL, SMALL, 3)), keras.layers.Flatten()])
    assert Member(model, from_logits=True).inference_after == INFERENCE_FUNCTION_AFTER
    monkeypatch.setattr(keras.distribution, "list_devices", lambda: ["gpu:0", "cpu:0"])
    assert Member(model, from_logits=True).inference_after is None
