"""Where a run trains: one device, several (MirroredStrategy, DataParallel, TPUStrategy) or
several hosts (JAX), on the engines TensorFlow and Keras already provide.

The recipe's `training.batch_size` is per replica. `resolve(recipe)` turns the recipe's
`training.distribution` and `[cluster]` settings into a `Placement`: the engine, the replica
and process counts, the global batch (per replica x replicas), the batch each process reads, and
the learning rate after the scaling rule. `train` builds the model and optimizer inside
`placement.scope()` and writes `placement.describe(...)` into the run folder's `distribution.json`.

Batch normalisation: under `MirroredStrategy` (and TPUStrategy) each replica normalises with its
own batch's statistics, as TF-slim's replicas did; under JAX's `DataParallel` the compiled step
sees the global batch, so the statistics are the global batch's.
"""

import contextlib
import dataclasses
import os
from dataclasses import dataclass, field

import keras

from keras_inception.errors import ConfigError, check, coerce_fields

DISTRIBUTIONS = ("auto", "mirrored", "tpu", "data_parallel")
LR_SCALING_RULES = ("linear", "none")
# Keras's own names (keras.distribution.initialize reads them when an argument is left out).
CLUSTER_ENVIRONMENT = {
    "coordinator_address": "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "num_processes": "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "process_id": "KERAS_DISTRIBUTION_PROCESS_ID",
}
MULTI_WORKER_REFUSAL = (
    "multi_worker_mirrored (tf.distribute.MultiWorkerMirroredStrategy) does not work with "
    "Keras 3's model.fit (keras-team/keras issue 20585). To train on several hosts, use the "
    'JAX backend (KERAS_BACKEND=jax) with training.distribution = "data_parallel" and the '
    "[cluster] settings (or the KERAS_DISTRIBUTION_* environment variables): one process per "
    "host; see docs/scaling.md."
)


class DistributionError(ConfigError):
    """A distribution setting this backend or machine cannot run; the message says what can."""


def check_distribution(name):
    """Raise `DistributionError` unless `name` is a distribution setting a recipe may hold."""
    if name == "multi_worker_mirrored":
        raise DistributionError(MULTI_WORKER_REFUSAL, key="training.distribution")
    if name not in DISTRIBUTIONS:
        raise DistributionError(
            f"training.distribution must be one of {DISTRIBUTIONS}, got {name!r}.",
            key="training.distribution",
        )


def check_lr_scaling(rule):
    if rule not in LR_SCALING_RULES:
        raise DistributionError(
            f"training.lr_scaling must be one of {LR_SCALING_RULES}, got {rule!r}.",
            key="training.lr_scaling",
        )


@dataclass(frozen=True)
class ClusterConfig:
    """A multi-host JAX job: the coordinator's `host:port`, the number of processes (one per
    host) and this process's id (0 is the coordinator). Each key left out is read from Keras's
    `KERAS_DISTRIBUTION_*` environment variable; all left out means a single-process run."""

    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None

    def __post_init__(self):
        coerce_fields(self, "cluster")
        check(
            self.num_processes is None or self.num_processes >= 1,
            "cluster.num_processes",
            "at least 1",
            self.num_processes,
        )
        check(
            self.process_id is None or self.process_id >= 0,
            "cluster.process_id",
            ">= 0",
            self.process_id,
        )

    def resolved(self):
        """(coordinator_address, num_processes, process_id) with the environment filling gaps."""
        values = {}
        for name, variable in CLUSTER_ENVIRONMENT.items():
            value = getattr(self, name)
            if value is None and os.environ.get(variable):
                text = os.environ[variable]
                try:
                    value = text if name == "coordinator_address" else int(text)
                except ValueError:
                    raise DistributionError(
                        f"{variable} must be an integer, got {text!r}."
                    ) from None
            values[name] = value
        return values["coordinator_address"], values["num_processes"], values["process_id"]


@dataclass(frozen=True)
class Placement:
    """A resolved distribution: how many replicas train, in how many processes, on what batch.

    Attributes:
        engine: "single", "mirrored", "tpu" (TPUStrategy) or "data_parallel".
        replicas: model replicas in the whole job (devices the batch is split over).
        processes, process_id: the JAX job's processes and this one's id (1 and 0 otherwise).
        per_replica_batch: the recipe's `training.batch_size`.
        base_learning_rate: the recipe's `optimizer.learning_rate`.
        lr_scaling: "linear" (times `replicas`, as slim and keras-cv scale) or "none".
    """

    engine: str
    replicas: int
    processes: int
    process_id: int
    per_replica_batch: int
    base_learning_rate: float
    lr_scaling: str
    strategy: object = field(default=None, repr=False, compare=False)

    @property
    def global_batch(self):
        return self.per_replica_batch * self.replicas

    @property
    def process_batch(self):
        """The batch this process's input pipeline yields (the whole global batch unless the
        job has several processes, each of which reads its own shard)."""
        return self.global_batch // self.processes

    @property
    def learning_rate(self):
        return self.base_learning_rate * (self.replicas if self.lr_scaling == "linear" else 1)

    @property
    def shard(self):
        """`make_datasets`'s `shard`: this process's share of the input, or None."""
        return (self.processes, self.process_id) if self.processes > 1 else None

    @contextlib.contextmanager
    def scope(self):
        """Build the model, compile and fit inside this: the tf.distribute strategy's scope or
        the keras.distribution's (both have `scope()`); nothing for a single device."""
        with self.strategy.scope() if self.strategy is not None else contextlib.nullcontext():
            yield

    def scaled(self, recipe):
        """`recipe` with the learning rates this placement trains at (the head phase's too)."""
        factor = self.learning_rate / self.base_learning_rate
        optimizer = dataclasses.replace(recipe.optimizer, learning_rate=self.learning_rate)
        finetune = recipe.finetune
        if finetune.head_learning_rate is not None:
            finetune = dataclasses.replace(
                finetune, head_learning_rate=finetune.head_learning_rate * factor
            )
        return dataclasses.replace(recipe, optimizer=optimizer, finetune=finetune)

    def steps_per_epoch(self, local_examples):
        """Full global batches per epoch. Every process must run the same number of steps, so
        a multi-process job takes the smallest shard's count."""
        steps = local_examples // self.process_batch
        if self.processes > 1:
            from jax.experimental import multihost_utils

            steps = int(multihost_utils.process_allgather(steps).min())
        return steps

    def check_validation_split(self, local_examples):
        """Refuse, before any training, a validation split whose last batch JAX's DataParallel
        could not split over this process's devices (it would fail at the first epoch's end)."""
        devices = self.replicas // self.processes
        if self.engine == "data_parallel" and local_examples % devices:
            raise DistributionError(
                f"JAX DataParallel splits every batch over this process's {devices} devices, but "
                f"the validation split's {local_examples} examples end in a batch of "
                f"{local_examples % self.process_batch}, which {devices} does not divide. Use a "
                f"validation split of a multiple of {devices} examples, or train without one and "
                "evaluate the model afterwards on one device."
            )

    def describe(self, steps_per_epoch=None):
        """The resolved values as a JSON-ready dict (what `distribution.json` holds)."""
        return {
            "backend": keras.backend.backend(),
            "engine": self.engine,
            "replicas": self.replicas,
            "processes": self.processes,
            "process_id": self.process_id,
            "per_replica_batch": self.per_replica_batch,
            "process_batch": self.process_batch,
            "global_batch": self.global_batch,
            "lr_scaling": self.lr_scaling,
            "base_learning_rate": self.base_learning_rate,
            "learning_rate": self.learning_rate,
            "steps_per_epoch": steps_per_epoch,
        }


def resolve(recipe):
    """The `Placement` for `recipe` on this backend and machine.

    Multi-host JAX jobs are joined here (`keras.distribution.initialize`), so call this before
    any JAX computation. Raises `DistributionError` for a setting the backend cannot run.
    """
    name = recipe.training.distribution
    check_distribution(name)
    check_lr_scaling(recipe.training.lr_scaling)
    backend = keras.backend.backend()
    coordinator, num_processes, process_id = recipe.cluster.resolved()
    multi_process = (num_processes or 1) > 1
    if multi_process:
        _join_cluster(backend, name, coordinator, num_processes, process_id)
    if backend == "tensorflow":
        engine, strategy, replicas = _tensorflow_engine(name)
    elif backend == "jax":
        engine, strategy, replicas = _jax_engine(name, multi_process)
    else:
        engine, strategy, replicas = _single_engine(name, backend)
    return Placement(
        engine=engine,
        replicas=replicas,
        processes=num_processes if multi_process else 1,
        process_id=process_id if multi_process else 0,
        per_replica_batch=recipe.training.batch_size,
        base_learning_rate=recipe.optimizer.learning_rate,
        lr_scaling=recipe.training.lr_scaling,
        strategy=strategy,
    )


def _join_cluster(backend, name, coordinator, num_processes, process_id):
    if backend != "jax":
        raise DistributionError(
            f"A job of {num_processes} processes needs the JAX backend (KERAS_BACKEND=jax), "
            f"not {backend}: {MULTI_WORKER_REFUSAL}"
        )
    if name not in ("auto", "data_parallel"):
        raise DistributionError(
            f"A multi-host job trains with data_parallel (or auto), not {name!r}."
        )
    if coordinator is None or process_id is None:
        raise DistributionError(
            f"A job of {num_processes} processes needs cluster.coordinator_address and "
            "cluster.process_id (or KERAS_DISTRIBUTION_JOB_ADDRESSES and "
            "KERAS_DISTRIBUTION_PROCESS_ID)."
        )
    if not 0 <= process_id < num_processes:
        raise DistributionError(
            f"cluster.process_id must be in [0, {num_processes}), got {process_id}."
        )
    keras.distribution.initialize(coordinator, num_processes, process_id)


def _tensorflow_engine(name):
    import tensorflow as tf

    if name == "data_parallel":
        raise DistributionError(
            'data_parallel is keras.distribution\'s (JAX backend); on TensorFlow use "mirrored".'
        )
    tpus = tf.config.list_physical_devices("TPU")
    if name == "tpu" or (name == "auto" and tpus):
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="local" if tpus else "")
        try:
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as error:
            raise DistributionError(
                f'training.distribution = "tpu" but no TPU answered: {error}'
            ) from error
        strategy = tf.distribute.TPUStrategy(resolver)
        return "tpu", strategy, strategy.num_replicas_in_sync
    gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
    if name == "auto" and len(gpus) < 2:
        return "single", None, 1
    # Explicit "mirrored" without accelerators mirrors over the logical CPU devices.
    devices = gpus or [device.name for device in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    return "mirrored", strategy, strategy.num_replicas_in_sync


def _jax_engine(name, multi_process):
    if name == "mirrored":
        raise DistributionError(
            'mirrored is TensorFlow\'s MirroredStrategy; on JAX use "data_parallel".'
        )
    devices = keras.distribution.list_devices()  # the job's accelerators, else its CPU devices
    if name == "tpu" and not devices[0].startswith("tpu"):
        raise DistributionError(f'training.distribution = "tpu" but JAX sees no TPU: {devices}.')
    if name == "auto" and not multi_process:
        accelerators = [device for device in devices if not device.startswith("cpu")]
        if len(accelerators) < 2:
            return "single", None, 1
    # Each process reads its own shard (make_datasets' `shard`), so Keras must not shard again.
    distribution = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    return "data_parallel", distribution, len(devices)


def _single_engine(name, backend):
    if name != "auto":
        raise DistributionError(
            f"The {backend} backend trains on one device here; training.distribution = {name!r} "
            "needs the TensorFlow (mirrored, tpu) or JAX (data_parallel, tpu) backend."
        )
    return "single", None, 1
