"""The private Keras and keras-cv attributes keras_inception/keras_internals.py relies on: each
test fails loudly if an upgrade changes what it uses, before a run trains differently."""

import importlib.util
import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.backend.tensorflow.optimizer import TFOptimizer
from keras.src.optimizers.base_optimizer import BaseOptimizer

from keras_inception.data.augmentation import inception_crop
from keras_inception.keras_internals import freeze, rmsprop_slots
from keras_inception.training.optimizer import GlobalClipFusedRMSprop


def test_keras_clips_before_the_tensorflow_backend_sums_the_replicas():
    """ClipAfterAllReduce overrides these two steps; Keras must still call both, clip first."""
    assert "self._clip_gradients(" in inspect.getsource(BaseOptimizer._backend_apply_gradients)
    assert "self._all_reduce_sum_gradients(" in inspect.getsource(TFOptimizer._backend_update_step)
    for method, parameters in [
        (BaseOptimizer._clip_gradients, ["self", "grads"]),
        (TFOptimizer._all_reduce_sum_gradients, ["self", "grads_and_vars"]),
    ]:
        assert list(inspect.signature(method).parameters) == parameters


@pytest.mark.parametrize(
    "value, clipped",
    [(5.0, True), (0.01, False), (np.inf, None)],  # global norms 24.5, 0.05 and inf; clip 1
    ids=["above-the-clip", "below-the-clip", "infinite"],
)
def test_the_clip_still_happens_once_on_one_device(value, clipped):
    """Moved after the all-reduce, and with its norm from TensorFlow's L2Loss, the clip must
    still apply exactly as Keras's own, NaN for an infinite norm included, over every gradient."""
    settings = dict(learning_rate=0.1, rho=0.9, momentum=0.9, epsilon=1.0, global_clipnorm=1.0)
    gradients = [tf.constant(np.full(shape, value, "float32")) for shape in [(3, 4), (12,)]]

    def step(optimizer):
        variables = [keras.Variable(np.zeros(g.shape, "float32")) for g in gradients]
        optimizer.build(variables)
        optimizer.apply(gradients, variables)
        return [v.numpy() for v in variables]

    ours = step(GlobalClipFusedRMSprop(**settings))
    keras_own = step(keras.optimizers.RMSprop(**settings))
    for a, b in zip(ours, keras_own, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, equal_nan=True)
    assert np.isnan(ours[0]).all() == (clipped is None)
    if clipped is not None:
        unclipped = step(keras.optimizers.RMSprop(**{**settings, "global_clipnorm": None}))
        assert np.allclose(unclipped[0], ours[0]) != clipped


def test_keras_keeps_the_weight_average_where_slim_weight_average_hooks_in():
    """SlimWeightAverage gives an initializer to the variables Keras's `build` adds as "average"
    and replaces their update, which each backend must call before the step is counted."""
    build = inspect.getsource(BaseOptimizer.build)
    assert "self._model_variables_moving_average = self.add_optimizer_variables(" in build
    assert 'variables, "average"' in build
    adding = inspect.getsource(BaseOptimizer.add_optimizer_variables)
    assert "self.add_variable_from_reference(" in adding and "initializer=var_init" in adding
    for method in (
        BaseOptimizer.add_variable_from_reference,
        TFOptimizer.add_variable_from_reference,
    ):
        parameters = ["self", "reference_variable", "name", "initializer"]
        assert list(inspect.signature(method).parameters) == parameters
    apply = inspect.getsource(BaseOptimizer.apply)
    assert apply.index("self._backend_apply_gradients(") < apply.index("_iterations.assign_add(1)")
    backends = [BaseOptimizer]
    if importlib.util.find_spec("jax") is not None:
        from keras.src.backend.jax.optimizer import JaxOptimizer

        backends.append(JaxOptimizer)
    for backend in backends:
        update = "self._update_model_variables_moving_average("
        assert update in inspect.getsource(backend._backend_apply_gradients)
    method = BaseOptimizer._update_model_variables_moving_average
    assert list(inspect.signature(method).parameters) == ["self", "trainable_variables"]
    assert "_model_variables_moving_average" in inspect.getsource(keras.callbacks.SwapEMAWeights)
    # The end of `fit` copies the averages into the model through this method, which ours replaces.
    finalize = inspect.getsource(BaseOptimizer.finalize_variable_values)
    assert "self._overwrite_model_variables_with_average_value(var_list)" in finalize
    method = BaseOptimizer._overwrite_model_variables_with_average_value
    assert list(inspect.signature(method).parameters) == ["self", "trainable_variables"]
    optimizer = keras.optimizers.SGD(use_ema=True)
    variables = [keras.Variable(np.ones(2, "float32")), keras.Variable(np.ones(3, "float32"))]
    optimizer.build(variables)
    assert [a.shape for a in optimizer._model_variables_moving_average] == [(2,), (3,)]


def test_rmsprop_slots_are_the_mean_square_and_momentum_of_the_variable():
    optimizer = keras.optimizers.RMSprop(learning_rate=0.1, rho=0.9, momentum=0.9)
    variables = [keras.Variable(np.zeros(2, "float32")), keras.Variable(np.zeros(5, "float32"))]
    optimizer.build(variables)
    gradient = np.arange(1, 6, dtype="float32")
    optimizer.apply([tf.zeros(2), tf.constant(gradient)], variables)
    mean_square, momentum = rmsprop_slots(optimizer, variables[1])
    np.testing.assert_allclose(mean_square.numpy(), 0.1 * gradient**2, rtol=1e-6)
    assert momentum.shape == (5,) and np.all(momentum.numpy() > 0)


def test_keras_cv_draws_the_crop_position_from_the_generator_we_set():
    image = tf.constant(np.random.default_rng(0).uniform(0, 1, (60, 80, 3)).astype("float32"))
    generator = tf.random.Generator.from_seed(7, alg="philox")
    crop = inception_crop((20, 20), 0.1, generator)
    assert "_random_generator" in inspect.getsource(type(crop).get_random_transformation)
    state = generator.state.numpy()
    first = crop(image).numpy()
    generator.state.assign(state)
    np.testing.assert_array_equal(crop(image).numpy(), first)  # the same state replays the crop
    others = [crop(image).numpy() for _ in range(3)]
    assert any(np.abs(other - first).max() > 1e-3 for other in others)


@pytest.mark.parametrize("name", ["_velocities", "_momentums"])
def test_rmsprop_keeps_its_slots_in_these_lists(name):
    optimizer = keras.optimizers.RMSprop(momentum=0.9)
    optimizer.build([keras.Variable(np.zeros(2, "float32"))])
    assert len(getattr(optimizer, name)) == 1


def test_freeze_makes_the_variables_a_function_reads_constants():
    """TensorFlow's freezing, which the inference function uses, under its private name."""
    variable = tf.Variable([1.0, 2.0])
    traced = tf.function(lambda x: x * variable).get_concrete_function(tf.TensorSpec([2]))
    frozen = freeze(traced)
    variable.assign([5.0, 5.0])
    (outputs,) = frozen(tf.constant([1.0, 3.0]))
    assert outputs.numpy().tolist() == [1.0, 6.0]
    operations = {operation.type for operation in frozen.graph.get_operations()}
    assert not operations & {"ReadVariableOp", "VarHandleOp"}
