"""Distribution: the recipe setting, the batch and learning-rate arithmetic, input sharding, and
training on several devices (TF MirroredStrategy, JAX DataParallel) and processes (a JAX job).

Device counts are fixed when a backend starts, so the multi-device runs are subprocesses. They
compare a distributed step with a single-device step on the same global batch whose two halves
are identical: each replica then normalises with the same batch statistics as the whole batch,
and any difference left is the gradient reduction's.
"""

import collections
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from keras_inception.data import DataConfig
from keras_inception.data.sources import open_source
from keras_inception.training import RecipeError, load_recipe
from keras_inception.training.distribution import (
    DISTRIBUTION_FILE,
    DistributionError,
    Placement,
    resolve,
)

REPO = Path(__file__).resolve().parents[1]
SHORT = ["model.dropout_rate=0.0", "training.epochs=1", "detector.probe_size=2"]

# Shared by the subprocesses: the quickstart recipe shortened to two steps, one model trained on
# a single device and one inside the placement, from the same weights, on the same batches.
COMPARE_WITH_SINGLE_DEVICE = """
import json
import keras, numpy as np, tensorflow as tf
from keras_inception.training import build_model, fit, load_recipe
from keras_inception.training.distribution import resolve

recipe = load_recipe("quickstart", {overrides!r})
placement = resolve(recipe)
half = np.random.default_rng(0).uniform(-1, 1, (2, 75, 75, 3)).astype("float32")
images, labels = np.concatenate([half, half]), np.array([1, 7, 1, 7], "int32")
batches = tf.data.Dataset.from_tensors((images, labels)).repeat(2)
keras.utils.set_random_seed(0)
single = build_model(recipe.model, 10)
initial = single.get_weights()
single_losses = fit(single, placement.scaled(recipe), batches, verbose=0).history["loss"]
with placement.scope():
    replicated = build_model(recipe.model, 10)
    replicated.set_weights(initial)
    losses = fit(replicated, placement.scaled(recipe), batches, verbose=0).history["loss"]
print("RESULT", json.dumps({{
    "engine": placement.engine, "replicas": placement.replicas,
    "global_batch": placement.global_batch, "losses": [single_losses[0], losses[0]],
}}))
"""


def _run(code, env=None, timeout=420):
    """Run `code` in a fresh Python; return the JSON it printed after RESULT."""
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert completed.returncode == 0 and lines, completed.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def _assert_trains_like_single_device(result):
    assert result["replicas"] == 2 and result["global_batch"] == 4
    single, replicated = result["losses"]
    # The mean loss of two steps: the second depends on the first update. Float reordering
    # (oneDNN, XLA) moves it by about 1e-3; a wrong gradient reduction or learning rate by more.
    assert replicated == pytest.approx(single, rel=5e-3)


# ------------------------------------------------------------------------------ settings


def test_multi_worker_mirrored_is_refused_with_the_way_forward():
    with pytest.raises(RecipeError) as error:
        load_recipe("quickstart", ['training.distribution="multi_worker_mirrored"'])
    message = str(error.value)
    assert "keras-team/keras issue 20585" in message
    assert "KERAS_BACKEND=jax" in message and "data_parallel" in message


@pytest.mark.parametrize(
    "override, named",
    [('training.distribution="ring"', "training.distribution"), ('training.lr_scaling="sqrt"', "linear")],
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
    placement.write(tmp_path, steps_per_epoch=5)
    written = json.loads((tmp_path / DISTRIBUTION_FILE).read_text())
    assert written["global_batch"] == 256 and written["learning_rate"] == placement.learning_rate
    assert written["steps_per_epoch"] == 5


# ------------------------------------------------------------------------------ sharding


@pytest.mark.parametrize("num_shards", [2, 3])
def test_shards_hold_every_example_exactly_once(num_shards):
    source = open_source(DataConfig(source="digits"))

    def examples(shard):
        split = source.split("train", shuffle_seed=0, shard=shard)
        return collections.Counter(
            (image.tobytes(), int(label)) for image, label in split.dataset.as_numpy_iterator()
        )

    sharded = collections.Counter()
    for index in range(num_shards):
        sharded += examples((num_shards, index))
    assert sharded == examples(None)


# ------------------------------------------------------------------------------ devices


def test_mirrored_strategy_on_two_cpu_devices_trains_like_one_device():
    result = _run(
        textwrap.dedent(
            """
            import tensorflow as tf
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
            """
        )
        + COMPARE_WITH_SINGLE_DEVICE.format(
            overrides=[*SHORT, 'training.distribution="mirrored"', "training.batch_size=2",
                       "training.steps_per_epoch=2"]
        ),
        env={"KERAS_BACKEND": "tensorflow"},
    )
    assert result["engine"] == "mirrored"
    _assert_trains_like_single_device(result)


def test_jax_data_parallel_on_two_host_devices_trains_like_one_device():
    result = _run(
        COMPARE_WITH_SINGLE_DEVICE.format(
            overrides=[*SHORT, 'training.distribution="data_parallel"', "training.batch_size=2",
                       "training.steps_per_epoch=2"]
        ),
        env={"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    )
    assert result["engine"] == "data_parallel"
    _assert_trains_like_single_device(result)


# Each process reads its own shard of the digits; the loss Keras reports is the global batch's.
TWO_PROCESS_WORKER = """
import json
import numpy as np
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


def test_two_processes_form_one_jax_job_each_reading_half_of_each_batch():
    overrides = [*SHORT, "training.batch_size=2", "training.steps_per_epoch=2",
                 f'cluster.coordinator_address="127.0.0.1:{_free_loopback_port()}"',
                 "cluster.num_processes=2"]
    code = TWO_PROCESS_WORKER.format(overrides=overrides)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=REPO,
            env={**os.environ, "KERAS_BACKEND": "jax", "KERAS_DISTRIBUTION_PROCESS_ID": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    try:
        outputs = [worker.communicate(timeout=480) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    results = []
    for worker, (stdout, stderr) in zip(workers, outputs):
        lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
        assert worker.returncode == 0 and lines, stderr[-3000:]
        results.append(json.loads(lines[-1].removeprefix("RESULT ")))
    for result in results:
        assert (result["processes"], result["devices"], result["global_batch"]) == (2, 2, 4)
        assert all(len(batch) == 2 for batch in result["local_labels"])  # half of each batch
    # Different halves on each process, one loss: every step trained on the two halves together.
    assert results[0]["local_labels"] != results[1]["local_labels"]
    assert results[0]["loss"] == pytest.approx(results[1]["loss"], rel=1e-6)
