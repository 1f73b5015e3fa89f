"""Distribution: the recipe setting, the batch and learning-rate arithmetic, input sharding, and
training on several devices (TF MirroredStrategy, JAX DataParallel) and processes (a JAX job).

Device counts are fixed when a backend starts, so the multi-device runs are subprocesses, all
started together when the first of their tests runs (`engine_runs`). Each compares one training
step inside the placement with a single-device step on the same global batch, whose two halves
are identical: each replica then normalises with the batch statistics of the whole batch (real
data would not: under MirroredStrategy each replica normalises its own half, see
docs/scaling.md), and any difference left is the gradient reduction's and the clipping's.
"""

import collections
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import FAST_XLA_COMPILE

from keras_inception.data import DataConfig
from keras_inception.data.sources import open_source
from keras_inception.training import RecipeError, RunFolder, load_recipe
from keras_inception.training.distribution import (
    DistributionError,
    Placement,
    resolve,
)

REPO = Path(__file__).resolve().parents[1]
# The quickstart recipe shortened: one step of one epoch on the smallest network (depths 0/0/1).
# No dropout: the replicas draw their masks from other generators than one device does.
SHORT = [
    "model.depths=[0, 0, 1]",
    "model.dropout_rate=0.0",
    "training.epochs=1",
    "training.steps_per_epoch=1",
    "training.batch_size=2",
    "detector.probe_size=2",
]
# The comparisons take 4 images a replica: with 2, the last blocks' batch norms (1x1 feature
# maps at 75x75) normalise 2 distinct values, and float reordering alone (TensorFlow against
# JAX on one device) moved the step's weight change by 1.9% on an AMX CPU; with 4, by 5.6e-4.
COMPARED = [*SHORT, "training.batch_size=4"]
TIMEOUT = 300

# One step of the (shortened) quickstart recipe on one device and inside the placement, from
# the same weights on the same batch; then both evaluate the same weights on the same data.
COMPARE_WITH_SINGLE_DEVICE = """
import json
import keras, numpy as np, tensorflow as tf
from keras_inception.training import build_model, fit, load_recipe
from keras_inception.training.distribution import resolve

recipe = load_recipe("quickstart", {overrides!r})
placement = resolve(recipe)
rng = np.random.default_rng(0)
half = rng.uniform(-1, 1, (4, 75, 75, 3)).astype("float32")
labels = np.array([1, 7, 3, 5])
step = tf.data.Dataset.from_tensors((np.concatenate([half, half]), np.concatenate([labels, labels])))
# 6 examples in batches of 4: a smaller last batch. (DataParallel cannot split an odd batch.)
evaluation = tf.data.Dataset.from_tensor_slices(
    (rng.uniform(-1, 1, (6, 75, 75, 3)).astype("float32"), rng.integers(0, 10, 6))
).batch(4).map(lambda x, y: (x, tf.one_hot(y, 10)))

def one_step(model):
    before = model.get_weights()
    loss = fit(model, placement.scaled(recipe), step, verbose=0).history["loss"][0]
    return loss, np.concatenate([(a - b).ravel() for a, b in zip(model.get_weights(), before)])

keras.utils.set_random_seed(0)
single = build_model(recipe.model, 10)
initial = single.get_weights()
single_loss, single_change = one_step(single)
with placement.scope():
    replicated = build_model(recipe.model, 10)
    replicated.set_weights(initial)
    loss, change = one_step(replicated)
    replicated.set_weights(single.get_weights())
    replicated_evaluation = replicated.evaluate(evaluation, verbose=0, return_dict=True)
single_evaluation = single.evaluate(evaluation, verbose=0, return_dict=True)
print("RESULT", json.dumps({{
    "engine": placement.engine, "replicas": placement.replicas,
    "global_batch": placement.global_batch, "losses": [single_loss, loss],
    "change_difference": float(np.linalg.norm(change - single_change) / np.linalg.norm(single_change)),
    "evaluations": [single_evaluation, replicated_evaluation],
}}))
"""

# TensorFlow only: split the CPU into two logical devices, compare, then run the recipe whole.
TWO_LOGICAL_CPUS = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""
TRAIN_THE_RECIPE = """
import sys
from keras_inception.training import train
history = train(recipe, output=sys.argv[1], verbose=0).history
print("TRAINED", json.dumps({"loss": history["loss"][0], "val_loss": history["val_loss"][0]}))
"""

# Each process reads its own shard of the digits; the loss Keras reports is the global batch's.
TWO_PROCESS_WORKER = """
import json
from keras_inception.data import make_datasets
from keras_inception.training import build_model, fit, load_recipe
from keras_inception.training.distribution import resolve

recipe = load_recipe("quickstart", {overrides!r})
placement = resolve(recipe)
data = make_datasets(recipe.data, image_size=75, batch_size=placement.process_batch,
                     seed=recipe.seed, shard=placement.shard)
local_labels = [labels.tolist() for _, labels in data.train.take(2).as_numpy_iterator()]
with placement.scope():
    model = build_model(recipe.model, data.num_classes)
    history = fit(model, placement.scaled(recipe), data.train, verbose=0).history
import jax
print("RESULT", json.dumps({{
    "processes": jax.process_count(), "devices": len(jax.devices()),
    "global_batch": placement.global_batch, "local_labels": local_labels,
    "loss": history["loss"][0],
}}))
"""


def _free_loopback_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Run:
    """A script in a fresh Python, started at once; `printed` waits for it, within TIMEOUT."""

    def __init__(self, code, env, *args):
        self.args = args
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, *map(str, args)],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._output = None

    def printed(self, tag="RESULT"):
        """The JSON the script printed after `tag`."""
        if self._output is None:
            self._output = self.process.communicate(timeout=TIMEOUT)
        stdout, stderr = self._output
        lines = [line for line in stdout.splitlines() if line.startswith(f"{tag} ")]
        assert self.process.returncode == 0 and lines, stderr[-3000:]
        return json.loads(lines[-1].removeprefix(f"{tag} "))

    def stop(self):
        self.process.kill()
        self.process.wait()


@pytest.fixture(scope="module")
def engine_runs(tmp_path_factory):
    """The multi-device and multi-process runs, each started when a test first asks for it (the
    two processes of the JAX job together) and shared by the tests that read it; killed, if
    still running, when the module ends."""
    port = _free_loopback_port()
    job = [
        *SHORT,
        "training.steps_per_epoch=2",
        "cluster.num_processes=2",
        f'cluster.coordinator_address="127.0.0.1:{port}"',
    ]
    scripts = {
        "mirrored": lambda: [
            _Run(
                TWO_LOGICAL_CPUS
                + COMPARE_WITH_SINGLE_DEVICE.format(
                    overrides=[*COMPARED, 'training.distribution="mirrored"']
                )
                + TRAIN_THE_RECIPE,
                {"KERAS_BACKEND": "tensorflow"},
                tmp_path_factory.mktemp("mirrored_run"),
            )
        ],
        "data_parallel": lambda: [
            _Run(
                COMPARE_WITH_SINGLE_DEVICE.format(
                    overrides=[*COMPARED, 'training.distribution="data_parallel"']
                ),
                {
                    "KERAS_BACKEND": "jax",
                    "XLA_FLAGS": f"{FAST_XLA_COMPILE} --xla_force_host_platform_device_count=2",
                },
            )
        ],
        "job": lambda: [
            _Run(
                TWO_PROCESS_WORKER.format(overrides=job),
                {
                    "KERAS_BACKEND": "jax",
                    "XLA_FLAGS": FAST_XLA_COMPILE,
                    "KERAS_DISTRIBUTION_PROCESS_ID": str(rank),
                },
            )
            for rank in range(2)
        ],
    }
    started = {}

    def runs(name):
        if name not in started:
            started[name] = scripts[name]()
        return started[name]

    yield runs
    for group in started.values():
        for run in group:
            run.stop()


def _assert_steps_like_single_device(result):
    assert result["replicas"] == 2 and result["global_batch"] == 8
    single, replicated = result["losses"]
    # Float reordering (oneDNN, XLA) moves the loss of the step by under 1e-4.
    assert replicated == pytest.approx(single, rel=3e-4)
    # The weight change of the step (RMSProp, clipped to global norm 2, weight decay): float
    # reordering moves it by 1e-5 to 4e-4 (relative norm); clipping each replica's share, as plain
    # Keras does, by 0.15; a gradient averaged instead of summed, or the wrong rate, by 0.5.
    assert result["change_difference"] < 3e-3


def _assert_evaluates_like_single_device(result):
    single, replicated = result["evaluations"]
    assert replicated.keys() == single.keys()
    for name, value in single.items():
        assert replicated[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name


# ------------------------------------------------------------------------------ settings


def test_multi_worker_mirrored_is_refused_with_the_way_forward():
    with pytest.raises(RecipeError) as error:
        load_recipe("quickstart", ['training.distribution="multi_worker_mirrored"'])
    message = str(error.value)
    assert "keras-team/keras issue 20585" in message
    assert "KERAS_BACKEND=jax" in message and "data_parallel" in message


@pytest.mark.parametrize(
    "override, named",
    [
        ('training.distribution="ring"', "training.distribution"),
        ('training.lr_scaling="sqrt"', "linear"),
    ],
)
def test_unknown_settings_name_the_choices(override, named):
    with pytest.raises(RecipeError, match=named):
        load_recipe("quickstart", [override])


def test_tensorflow_refuses_keras_data_parallel_and_multi_process_jobs(monkeypatch):
    with pytest.raises(DistributionError, match="mirrored"):
        resolve(load_recipe("quickstart", ['training.distribution="data_parallel"']))
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    with pytest.raises(DistributionError, match="JAX backend"):
        resolve(load_recipe("quickstart"))


def test_one_device_trains_without_a_strategy():
    placement = resolve(load_recipe("quickstart", ["training.batch_size=16"]))
    assert (placement.engine, placement.replicas, placement.strategy) == ("single", 1, None)
    assert placement.global_batch == 16 and placement.shard is None


@pytest.mark.parametrize("rule, factor", [("linear", 8), ("none", 1)])
def test_global_batch_learning_rate_and_steps_follow_the_replicas(tmp_path, rule, factor):
    placement = Placement(
        engine="data_parallel",
        replicas=8,
        processes=2,
        process_id=1,
        per_replica_batch=32,
        base_learning_rate=0.045,
        lr_scaling=rule,
    )
    assert (placement.global_batch, placement.process_batch) == (256, 128)
    assert placement.learning_rate == pytest.approx(0.045 * factor)
    assert placement.shard == (2, 1)
    recipe = load_recipe("quickstart")
    assert placement.scaled(recipe).optimizer.learning_rate == placement.learning_rate
    run = RunFolder(tmp_path)
    run.write_distribution(placement.describe(steps_per_epoch=5))
    written = json.loads(run.distribution_file.read_text())
    assert written["global_batch"] == 256 and written["learning_rate"] == placement.learning_rate
    assert written["steps_per_epoch"] == 5


@pytest.mark.parametrize(
    "engine, examples, refused",
    [
        ("data_parallel", 1001, True),  # ends in a batch of 105, over 4 devices
        ("data_parallel", 1000, False),  # ends in a batch of 104
        ("mirrored", 1001, False),  # MirroredStrategy splits an uneven batch itself
    ],
)
def test_a_validation_split_data_parallel_cannot_batch_is_refused_before_training(
    engine, examples, refused
):
    placement = Placement(
        engine=engine,
        replicas=4,
        processes=1,
        process_id=0,
        per_replica_batch=32,
        base_learning_rate=0.045,
        lr_scaling="linear",
    )
    if refused:
        with pytest.raises(ValueError, match=r"4 devices.*1001 examples end in a batch of 105"):
            placement.check_validation_split(examples)
    else:
        placement.check_validation_split(examples)


# ------------------------------------------------------------------------------ sharding


@pytest.mark.parametrize("num_shards", [2, 3])
def test_shards_hold_every_example_exactly_once(num_shards):
    source = open_source(DataConfig(source="digits"))

    def examples(shard):
        split = source.split("train", shard=shard)
        return collections.Counter(
            (image.tobytes(), int(label)) for image, label in split.read().as_numpy_iterator()
        )

    sharded = collections.Counter()
    for index in range(num_shards):
        sharded += examples((num_shards, index))
    assert sharded == examples(None)


# ------------------------------------------------------------------------------ devices


@pytest.mark.slow
@pytest.mark.subprocess
def test_mirrored_strategy_on_two_cpu_devices_trains_the_recipe_like_one_device(engine_runs):
    (run,) = engine_runs("mirrored")
    result = run.printed()
    assert result["engine"] == "mirrored"
    _assert_steps_like_single_device(result)
    run_dir = run.args[0]
    written = json.loads(RunFolder(run_dir).distribution_file.read_text())
    assert (written["engine"], written["replicas"], written["global_batch"]) == ("mirrored", 2, 8)
    assert written["learning_rate"] == pytest.approx(
        2 * load_recipe("quickstart").optimizer.learning_rate
    )
    trained = run.printed("TRAINED")
    assert np.isfinite([trained["loss"], trained["val_loss"]]).all()
    assert (run_dir / "model.keras").is_file()


@pytest.mark.slow
@pytest.mark.subprocess
def test_mirrored_strategy_evaluates_like_one_device(engine_runs):
    _assert_evaluates_like_single_device(engine_runs("mirrored")[0].printed())


@pytest.mark.slow
@pytest.mark.subprocess
def test_jax_data_parallel_on_two_host_devices_trains_like_one_device(engine_runs):
    result = engine_runs("data_parallel")[0].printed()
    assert result["engine"] == "data_parallel"
    _assert_steps_like_single_device(result)
    _assert_evaluates_like_single_device(result)


@pytest.mark.slow
@pytest.mark.subprocess
def test_two_processes_form_one_jax_job_each_reading_half_of_each_batch(engine_runs):
    results = [run.printed() for run in engine_runs("job")]
    for result in results:
        assert (result["processes"], result["devices"], result["global_batch"]) == (2, 2, 4)
        assert all(len(batch) == 2 for batch in result["local_labels"])  # half of each batch
    # Different halves on each process, one loss: every step trained on the two halves together.
    assert results[0]["local_labels"] != results[1]["local_labels"]
    assert results[0]["loss"] == pytest.approx(results[1]["loss"], rel=1e-6)
