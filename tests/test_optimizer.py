"""The recipe's optimizers (RMSProp, SGD, AdamW), schedules (exponential, cosine with warm-up) and
slim's warmed-up weight average, on a Dense layer: no Inception network is needed."""

import inspect
import math
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import FAST_XLA_COMPILE

from keras_inception.errors import ConfigError
from keras_inception.training import compile_for_recipe, load_recipe
from keras_inception.training.optimizer import (
    GlobalClipAdamW,
    GlobalClipFusedRMSprop,
    GlobalClipSGD,
    build_optimizer,
)

REPO = Path(__file__).resolve().parents[1]
STEPS_PER_EPOCH = 10
KERAS_CLASSES = {
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
    "adamw": keras.optimizers.AdamW,
}
OURS = {"rmsprop": GlobalClipFusedRMSprop, "sgd": GlobalClipSGD, "adamw": GlobalClipAdamW}


def recipe(*overrides):
    return load_recipe("quickstart", list(overrides))


def averages(optimizer):
    """The weight average Keras keeps (no public accessor; see test_keras_internals.py)."""
    return [average.numpy() for average in optimizer._model_variables_moving_average]


def expected_decay(step, decay):
    """Slim's ExponentialMovingAverage with num_updates = global_step."""
    return min(decay, (1 + step) / (10 + step))


def result_of(script, env=None):
    """What `script`, run in a Python process of its own, printed after its last "RESULT "."""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    return lines[-1].removeprefix("RESULT ")


def dense_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])


def test_sgd_takes_momentum_nesterov_clipping_and_averaging_from_the_recipe():
    optimizer = build_optimizer(
        recipe(
            "optimizer.name=sgd",
            "optimizer.momentum=0.8",
            "optimizer.nesterov=true",
            "optimizer.global_clipnorm=1.5",
            "optimizer.ema_momentum=0.95",
        ),
        STEPS_PER_EPOCH,
    )
    assert isinstance(optimizer, GlobalClipSGD) and isinstance(optimizer, keras.optimizers.SGD)
    assert (optimizer.momentum, optimizer.nesterov) == (0.8, True)
    assert optimizer.global_clipnorm == 1.5
    assert optimizer.use_ema and optimizer.ema_momentum == 0.95


def test_adamw_takes_its_decoupled_weight_decay_and_epsilon_from_the_recipe():
    optimizer = build_optimizer(
        recipe(
            "optimizer.name=adamw",
            "optimizer.decoupled_weight_decay=0.01",
            "optimizer.epsilon=1e-6",
            "optimizer.global_clipnorm=1.5",
        ),
        STEPS_PER_EPOCH,
    )
    assert isinstance(optimizer, GlobalClipAdamW) and isinstance(optimizer, keras.optimizers.AdamW)
    assert (optimizer.weight_decay, optimizer.epsilon) == (0.01, 1e-6)
    assert (optimizer.beta_1, optimizer.beta_2) == (0.9, 0.999)  # Keras's defaults
    assert optimizer.global_clipnorm == 1.5


def test_epsilon_left_out_is_the_papers_for_rmsprop_and_keras_default_for_adamw(tmp_path):
    path = tmp_path / "no_epsilon.toml"
    path.write_text('[data]\nsource = "digits"\n')  # every [optimizer] key at its default
    rmsprop = build_optimizer(load_recipe(path), STEPS_PER_EPOCH)
    adamw = build_optimizer(load_recipe(path, ["optimizer.name=adamw"]), STEPS_PER_EPOCH)
    assert rmsprop.epsilon == 1.0
    assert adamw.epsilon == inspect.signature(keras.optimizers.AdamW).parameters["epsilon"].default
    assert adamw.weight_decay == 0.004


@pytest.mark.parametrize("name", ["rmsprop", "sgd", "adamw"])
def test_each_optimizer_updates_as_keras_own_class_does(name):
    """Three compiled steps, clipping included, against the Keras class with the same config:
    the mixins change where the clip happens and the average, not the update."""
    ours = build_optimizer(
        recipe(f"optimizer.name={name}", "optimizer.global_clipnorm=1.0"), STEPS_PER_EPOCH
    )
    theirs = KERAS_CLASSES[name].from_config(ours.get_config())
    rng = np.random.default_rng(0)
    initial = rng.normal(size=(3, 4)).astype("float32")
    gradients = [tf.constant(rng.normal(0, 5, (3, 4)).astype("float32")) for _ in range(3)]
    finals = []
    for optimizer in (ours, theirs):
        variable = keras.Variable(initial)
        optimizer.build([variable])
        step = tf.function(lambda gradient: optimizer.apply([gradient], [variable]))  # noqa: B023
        for gradient in gradients:
            step(gradient)
        finals.append(variable.numpy())
    np.testing.assert_allclose(finals[0], finals[1], rtol=1e-5, atol=1e-7)
    assert np.abs(finals[0] - initial).min() > 1e-4


def test_the_fused_rmsprop_makes_its_scalars_once_per_traced_step_and_updates_as_keras():
    """Five variables, compiled and eager steps: the same weights as Keras's RMSprop, and the
    traced step holds one constant each for rho, momentum and epsilon, not one per variable."""
    settings = ("optimizer.rho=0.91", "optimizer.momentum=0.93", "optimizer.epsilon=0.97")
    ours = build_optimizer(recipe(*settings), STEPS_PER_EPOCH)
    theirs = keras.optimizers.RMSprop.from_config(ours.get_config())
    rng = np.random.default_rng(0)
    initial = [rng.normal(size=(2, i + 1)).astype("float32") for i in range(5)]
    gradients = [[tf.constant(rng.normal(size=w.shape), "float32") for w in initial]] * 3
    finals, steps = [], []
    for optimizer in (ours, theirs):
        variables = [keras.Variable(w) for w in initial]
        optimizer.build(variables)
        step = tf.function(lambda grads: optimizer.apply(grads, variables))  # noqa: B023
        for grads in gradients[:2]:
            step(grads)
        optimizer.apply(gradients[2], variables)  # eagerly
        finals.append([v.numpy() for v in variables])
        steps.append(step)
    for got, expected in zip(*finals, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)

    graph = steps[0].get_concrete_function(gradients[0]).graph
    op_types = [op.type for op in graph.get_operations()]
    assert op_types.count("ResourceApplyRMSProp") == 5
    constants = [
        float(tf.make_ndarray(op.get_attr("value")))
        for op in graph.get_operations()
        if op.type == "Const"
        and op.get_attr("dtype") == tf.float32
        and op.outputs[0].shape.rank == 0
    ]
    for value in (0.91, 0.93, 0.97):
        assert constants.count(pytest.approx(value)) == 1, value


def test_the_exponential_schedule_spans_the_phase_from_its_rate():
    optimizer = build_optimizer(
        recipe("schedule.decay_epochs=2"), STEPS_PER_EPOCH, learning_rate=0.01, epochs=3
    )
    schedule = optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.ExponentialDecay)
    expected = keras.optimizers.schedules.ExponentialDecay(
        0.01, decay_steps=2 * STEPS_PER_EPOCH, decay_rate=0.94, staircase=True
    )
    assert schedule.get_config() == expected.get_config()
    assert float(schedule(2 * STEPS_PER_EPOCH - 1)) == pytest.approx(0.01)
    assert float(schedule(2 * STEPS_PER_EPOCH)) == pytest.approx(0.01 * 0.94)


@pytest.mark.parametrize("phase", [{}, {"learning_rate": 0.02, "epochs": 4}])
def test_the_cosine_schedule_warms_up_then_decays_as_keras_documents(phase):
    """The rates against the formulas of CosineDecay's documentation: the warm-up
    `completed_fraction * (warmup_target - initial)` from 0, then
    `warmup_target * ((1 - alpha) * 0.5 * (1 + cos(pi * step / decay_steps)) + alpha)`."""
    config = recipe(
        "optimizer.learning_rate=0.1",
        "training.epochs=10",
        "schedule.name=cosine",
        "schedule.warmup_epochs=1.5",
        "schedule.alpha=0.1",
    )
    schedule = build_optimizer(config, STEPS_PER_EPOCH, **phase)._learning_rate
    peak = phase.get("learning_rate", 0.1)
    warmup = 15  # 1.5 epochs of 10 steps
    decay_steps = phase.get("epochs", 10) * STEPS_PER_EPOCH - warmup

    def documented(step):
        if step < warmup:
            return step / warmup * peak
        step = min(step - warmup, decay_steps)
        return peak * ((1 - 0.1) * 0.5 * (1 + math.cos(math.pi * step / decay_steps)) + 0.1)

    end = warmup + decay_steps
    for step in [0, 5, warmup, warmup + decay_steps // 2, end - 1, end, end + 50]:
        assert float(schedule(step)) == pytest.approx(documented(step), rel=1e-5, abs=1e-9)
    assert float(schedule(0)) == 0
    assert float(schedule(warmup)) == pytest.approx(peak)
    assert float(schedule(end)) == pytest.approx(0.1 * peak)


def test_a_warm_up_must_end_within_the_phase():
    config = recipe("schedule.name=cosine", "schedule.warmup_epochs=3")
    build_optimizer(config, STEPS_PER_EPOCH, epochs=4)
    with pytest.raises(ConfigError, match="schedule.warmup_epochs must be less than the 3 epochs"):
        build_optimizer(config, STEPS_PER_EPOCH, epochs=3)


@pytest.mark.parametrize("name", ["rmsprop", "sgd", "adamw"])
def test_the_average_starts_at_the_initial_weights_and_warms_up_as_slims(name):
    """After one step at t = 0, 10 and 1000, average = d * previous + (1 - d) * new weights with
    d = min(decay, (1 + t) / (10 + t))."""
    decay = 0.999
    optimizer = build_optimizer(
        recipe(f"optimizer.name={name}", f"optimizer.ema_momentum={decay}"), STEPS_PER_EPOCH
    )
    initial = np.random.default_rng(0).normal(size=(2, 3)).astype("float32")
    variable = keras.Variable(initial)
    optimizer.build([variable])
    np.testing.assert_array_equal(averages(optimizer)[0], initial)
    gradient = tf.constant(np.linspace(-1, 1, 6, dtype="float32").reshape(2, 3))
    for step in (0, 10, 1000):
        optimizer.iterations.assign(step)
        (previous,) = averages(optimizer)
        optimizer.apply([gradient], [variable])
        d = expected_decay(step, decay)
        np.testing.assert_allclose(
            averages(optimizer)[0], d * previous + (1 - d) * variable.numpy(), rtol=1e-6
        )
    assert not np.allclose(averages(optimizer)[0], variable.numpy())  # it does lag


class RecordAverages(keras.callbacks.Callback):
    """The weights before training (`model.fit` may build the optimizer only in its first
    step), then the weights and their average after each step."""

    def on_train_begin(self, logs=None):
        self.initial = self.model.get_weights()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append((self.model.get_weights(), averages(self.model.optimizer)))


def check_the_recorded_averages(initial, steps, decay):
    """Each step's average from the one before, the first from the initial weights."""
    previous = initial
    for step, (weights, average) in enumerate(steps):
        d = expected_decay(step, decay)
        for new, old, value in zip(weights, previous, average):
            np.testing.assert_allclose(value, d * old + (1 - d) * new, rtol=1e-5, atol=1e-7)
        previous = average


def averaged_sgd_model():
    """A small model compiled with SGD and a 0.9 weight average (built in a strategy's scope
    when one is active)."""
    model = dense_model()
    model.compile(
        optimizer=build_optimizer(recipe("optimizer.name=sgd", "optimizer.ema_momentum=0.9"), 4),
        loss="categorical_crossentropy",
    )
    return model


def fit_recording_averages(model):
    """Four steps of `model.fit` on seeded data; the `RecordAverages` of them."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]
    recorder = RecordAverages()
    model.fit(x, y, batch_size=4, epochs=1, callbacks=[recorder], verbose=0)
    return recorder


def test_the_average_warms_up_under_model_fit():
    recorder = fit_recording_averages(averaged_sgd_model())
    assert len(recorder.steps) == 4
    check_the_recorded_averages(recorder.initial, recorder.steps, 0.9)


MIRRORED_FIT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, "tests")
from test_optimizer import averaged_sgd_model, fit_recording_averages

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = averaged_sgd_model()
recorder = fit_recording_averages(model)
replicas = [
    [value.numpy().tolist() for value in strategy.experimental_local_results(average.value)]
    for average in model.optimizer._model_variables_moving_average
]
steps = [[[w.tolist() for w in weights], [a.tolist() for a in average]]
         for weights, average in recorder.steps]
initial = [w.tolist() for w in recorder.initial]
print("RESULT", json.dumps({"initial": initial, "steps": steps, "replicas": replicas}))
"""


@pytest.mark.subprocess
def test_the_average_warms_up_under_mirrored_strategy_on_two_cpus():
    import json

    output = json.loads(result_of(MIRRORED_FIT))
    steps = [
        ([np.array(w) for w in weights], [np.array(a) for a in average])
        for weights, average in output["steps"]
    ]
    assert len(steps) == 4
    check_the_recorded_averages([np.array(w) for w in output["initial"]], steps, 0.9)
    for first, second in output["replicas"]:  # both replicas hold the same average
        np.testing.assert_allclose(first, second)


@pytest.mark.parametrize("name", ["rmsprop", "sgd", "adamw"])
def test_a_model_compiled_with_each_optimizer_saves_and_loads(tmp_path, name):
    model = dense_model()
    config = recipe(f"optimizer.name={name}", "schedule.name=cosine", "schedule.warmup_epochs=1")
    model.compile(optimizer=build_optimizer(config, STEPS_PER_EPOCH), loss="mse")
    model.fit(np.ones((8, 4), "float32"), np.ones((8, 3), "float32"), verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer) is OURS[name]
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    for mine, theirs in zip(averages(model.optimizer), averages(loaded.optimizer)):
        np.testing.assert_array_equal(mine, theirs)


def test_compile_for_recipe_compiles_the_named_optimizer_and_schedule():
    model = dense_model()
    compile_for_recipe(
        model,
        recipe("optimizer.name=adamw", "schedule.name=cosine", "schedule.warmup_epochs=1"),
        STEPS_PER_EPOCH,
    )
    assert isinstance(model.optimizer, GlobalClipAdamW)
    assert isinstance(model.optimizer._learning_rate, keras.optimizers.schedules.CosineDecay)


def test_compile_for_recipe_builds_the_optimizer_so_the_first_step_traces_once():
    """Built inside the traced step, the optimizer's variables made TensorFlow trace it twice."""
    model = dense_model()
    compile_for_recipe(model, recipe(), STEPS_PER_EPOCH)
    assert model.optimizer.built
    for weight, average in zip(model.trainable_weights, averages(model.optimizer)):
        np.testing.assert_array_equal(weight.numpy(), average)
    traces = []
    step = model.train_step
    model.train_step = lambda data: traces.append(1) or step(data)
    x = np.zeros((4, 4), "float32")
    model.fit(x, keras.utils.to_categorical([0, 1, 2, 0], 3), batch_size=4, epochs=2, verbose=0)
    assert len(traces) == 1


# Trains a small IR-v2 twice with one optimizer on JAX, in a process where importing TensorFlow
# fails: the models, a recipe and compile_for_recipe must not need it.
JAX_WITHOUT_TENSORFLOW = """
import keras, numpy as np
import keras_inception
from keras_inception.training import compile_for_recipe, load_recipe

recipe = load_recipe("quickstart", ["model.aux_logits=false"])
model = keras_inception.InceptionResNetV2(input_shape=(75, 75, 3), classes=3, depths=(1, 1, 1))
compile_for_recipe(model, recipe, steps_per_epoch=2)
rng = np.random.default_rng(0)
x = rng.uniform(-1, 1, (4, 75, 75, 3)).astype("float32")
y = keras.utils.to_categorical(rng.integers(0, 3, 4), 3)
for _ in range(2):
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
averages = model.optimizer._model_variables_moving_average
weights, average = model.trainable_weights[0], averages[0]
print("RESULT", keras.backend.backend(), int(model.optimizer.iterations.numpy()),
      np.array_equal(weights.numpy(), average.numpy()))
"""


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_recipe_trains_twice_with_one_optimizer_on_jax_without_tensorflow(tmp_path):
    """The second `fit` once failed on JAX: the first left each weight sharing its average's
    buffer, and the step donates both."""
    pytest.importorskip("jax", reason="the JAX backend needs jax installed")
    stand_in = tmp_path / "tensorflow"
    stand_in.mkdir()
    (stand_in / "__init__.py").write_text('raise ImportError("no TensorFlow in this test")')
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
        "XLA_FLAGS": FAST_XLA_COMPILE,
    }
    # Both fits trained; the last copied the weight average into the model.
    assert result_of(JAX_WITHOUT_TENSORFLOW, env).split() == ["jax", "4", "True"]
