"""What the test modules share: the networks to parametrise over, small inputs, the one way to
randomise a model, inference runs, slim checkpoints written from arrays, and training runs in
processes of their own that kill themselves on cue.

Test modules import it as `helpers` (pytest puts this folder on sys.path).
"""

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_inception import faults
from keras_inception.models import networks
from keras_inception.run_folder import RunFolder

# The smallest input every network takes, and one block per stage: depth changes no shape.
SMALL = 75
TINY_DEPTHS = (1, 1, 1)
# XLA_FLAGS for the JAX processes tests start: XLA compiles every JAX program (each initializer,
# each step) with LLVM's optimisations, and without them these processes take about 60% of the
# time. What a test compares, programs of one process or job, is compiled alike.
FAST_XLA_COMPILE = "--xla_backend_optimization_level=0"


def network_params():
    """One pytest parameter per registered network (its `NetworkSpec`), with its name as id."""
    return [pytest.param(spec, id=spec.name) for spec in networks()]


def images(count=2, size=SMALL, seed=0):
    """`count` deterministic RGB images of `size` x `size`, already scaled to [-1, 1]."""
    return np.random.default_rng(seed).uniform(-1, 1, (count, size, size, 3)).astype("float32")


def randomise(model, seed=0):
    """Give every weight of a Keras model seeded random values: kernels at their fan-in scale,
    vectors small, BN variances in [0.5, 1.5], so that no layer (BN included) is an identity and
    a weight that silently failed to load shows in the outputs."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "variance" in variable.name:
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) > 1:
            value = rng.normal(0, 1 / np.sqrt(np.prod(shape[:-1])), shape)
        else:
            value = rng.normal(0, 0.1, shape)
        variable.assign(value.astype("float32"))
    return model


def run(model, x):
    """The model's outputs in inference mode, as arrays (a direct call: `predict` would trace the
    whole graph first, which is slower for these one-off calls)."""
    outputs = model(x, training=False)
    if isinstance(outputs, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in outputs]
    return keras.ops.convert_to_numpy(outputs)


def write_slim_checkpoint(prefix, tensors):
    """Write `tensors` (full slim names) as a TF checkpoint, the way slim's Saver names them."""
    names = sorted(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(tensors[name]) for name in names],
    )
    return str(prefix)


def assert_same_final_weights(run_dir, reference):
    """The final models of the run folders `run_dir` and `reference` hold equal weights."""

    def weights(folder):
        return keras.saving.load_model(Path(folder) / "model.keras", compile=False).get_weights()

    for ours, theirs in zip(weights(run_dir), weights(reference), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def start_training(overrides, run_dir, log, kill_at=None):
    """`keras-inception train quickstart` with `overrides` on `run_dir` in a new process, which
    SIGKILLs itself at the `faults` point `kill_at`. Its output goes to the file `log`: a pipe
    nobody reads while other runs go on could fill up and stall it."""
    env = {key: value for key, value in os.environ.items() if key != faults.ENVIRONMENT_VARIABLE}
    if kill_at:
        env[faults.ENVIRONMENT_VARIABLE] = kill_at
    command = [sys.executable, "-m", "keras_inception_cli", "train", "quickstart"]
    with open(log, "w") as output:
        return subprocess.Popen(
            [*command, *[f"--set={o}" for o in overrides], "--output", str(run_dir)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@dataclasses.dataclass
class Start:
    """What one start of a training command did."""

    status: int
    epochs: list[int]  # those it began, from its "Epoch n/N" lines
    finished: bool  # whether its run folder was finished after it
    output: str  # the end of it, for failure messages


def train_in_a_process(overrides, run_dir, log, kill_at=None):
    """`start_training` waited for, as a `Start`."""
    status = start_training(overrides, run_dir, log, kill_at).wait(timeout=900)
    output = Path(log).read_text()
    epochs = [int(n) for n in re.findall(r"^Epoch (\d+)/", output, re.MULTILINE)]
    return Start(status, epochs, RunFolder(run_dir).finished, output[-2000:])
