"""The trainer: the paper's method assembled from Keras's own optimizer, schedule and callbacks.

`train(recipe)` builds the data and the network a recipe names and trains it into a run folder;
`fit(model, recipe, train_ds, val_ds)` does the same for a model and data of your own.

A run folder holds:
    recipe.toml            the resolved recipe (re-running on this folder must match it)
    distribution.json      replicas, global batch, scaled learning rate, steps per epoch
    log.csv                one row per epoch: losses, top-1/top-5, learning rate, zero fraction
    zero_fraction.csv      every dead-network check: optimizer step, zero fraction
    tensorboard/           TensorBoard logs
    checkpoints/           the model after each epoch (`epoch_NNN.keras`, optimizer included)
    backup/                Keras's BackupAndRestore state while a run is unfinished
    model.keras            the final model, holding the averaged (EMA) weights
    curves.png             the training curves
    dead_network.txt       only if the detector stopped the run: why, and what to try
    last_alive.keras       only then: the model with the weights of the last healthy check
"""

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from keras_inception import plotting
from keras_inception.data import make_datasets
from keras_inception.models import NETWORKS
from keras_inception.training import distribution
from keras_inception.training.callbacks import (
    DeadNetworkDetector,
    DeadNetworkError,
    EpochSeeds,
    LearningRateLogger,
)
from keras_inception.training.optimizer import build_optimizer
from keras_inception.training.precision import resolve_precision
from keras_inception.training.recipe import RecipeError, recipe_to_toml

RECIPE_FILE = "recipe.toml"
LOG_FILE = "log.csv"
ZERO_FRACTION_FILE = "zero_fraction.csv"
MODEL_FILE = "model.keras"
CURVES_FILE = "curves.png"
BACKUP_DIR = "backup"
DEAD_NETWORK_FILE = "dead_network.txt"
LAST_ALIVE_FILE = "last_alive.keras"


@dataclass
class TrainingResult:
    """What a finished `train` or `fit` leaves: the trained model, the per-epoch logs of this
    call (`keras.callbacks.History.history`), and the run folder if there is one."""

    model: keras.Model
    history: dict
    run_dir: Path | None = None


def build_model(config, num_classes):
    """The network a recipe's `[model]` section describes, with a softmax over `num_classes`."""
    options = {
        name: value
        for name, value in (("residual_scale", config.residual_scale), ("depths", config.depths))
        if value is not None
    }
    return NETWORKS[config.network](
        input_shape=(config.input_size, config.input_size, 3),
        classes=num_classes,
        dropout_rate=config.dropout_rate,
        aux_logits=config.aux_logits,
        **options,
    )


def add_weight_decay(model, weight_decay):
    """Slim's weight decay: an L2 penalty on every convolution and dense kernel.

    Slim's `l2_regularizer(4e-5)` adds 4e-5 * sum(w**2) / 2 to the loss; `keras.regularizers.L2`
    has no halving, hence the factor. A penalty in the loss (rather than the optimizer's decoupled
    `weight_decay`) is what the paper trained with: it goes through RMSProp's scaling and the
    gradient clipping like any other gradient.
    """
    if weight_decay:
        for variable in model.trainable_variables:
            if variable.name == "kernel":
                variable.regularizer = keras.regularizers.L2(weight_decay / 2)


def compile_model(model, recipe, steps_per_epoch):
    """Compile for the recipe: label-smoothed cross-entropy on one-hot labels (weighted by
    `aux_loss_weight` on a second, auxiliary output), top-1 and top-5 accuracy, RMSProp."""
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=recipe.training.label_smoothing)
    outputs = len(model.outputs)
    metrics = [
        keras.metrics.CategoricalAccuracy(name="top1"),
        keras.metrics.TopKCategoricalAccuracy(5, name="top5"),
    ]
    add_weight_decay(model, recipe.training.weight_decay)
    model.compile(
        optimizer=build_optimizer(recipe, steps_per_epoch),
        loss=[loss] * outputs if outputs > 1 else loss,
        loss_weights=[1.0, recipe.model.aux_loss_weight] if outputs > 1 else None,
        metrics=[metrics] + [[]] * (outputs - 1) if outputs > 1 else metrics,
    )


def fit(
    model,
    recipe,
    train_ds,
    val_ds=None,
    *,
    run_dir=None,
    batches_per_epoch=None,
    data=None,
    callbacks=(),
    verbose="auto",
):
    """Train `model` (softmax outputs; a second output is an auxiliary head) the recipe's way.

    `train_ds` yields `(images, labels)` batches, labels as class indices or one-hot; an epoch is
    `training.steps_per_epoch` batches, by default one pass (`batches_per_epoch`, needed when
    tf.data cannot count a pass). With `run_dir`, the run writes its logs, checkpoints and backup
    there and resumes from the backup if one exists. `data`, the `DataBundle` that `train_ds`
    comes from if it does, is told each epoch's number, so that a resumed epoch reads the same
    data. `callbacks` are added to the recipe's. Raises `DeadNetworkError` if the dead-network
    detector stops the run (the model then holds the weights of the last healthy check).
    """
    training = recipe.training
    num_classes = model.outputs[0].shape[-1]
    steps_per_epoch = training.steps_per_epoch or batches_per_epoch or _count_batches(train_ds)
    train_ds = _epochs_of(train_ds, steps_per_epoch)
    train_ds = _with_one_hot_targets(train_ds, num_classes, len(model.outputs))
    if val_ds is not None:
        val_ds = _with_one_hot_targets(val_ds, num_classes, len(model.outputs))
    compile_model(model, recipe, steps_per_epoch)

    probe_source = val_ds if val_ds is not None else train_ds
    probe = next(iter(probe_source.unbatch().batch(recipe.detector.probe_size)))[0]
    detector = DeadNetworkDetector(
        probe,
        check_every=recipe.detector.check_every,
        threshold=recipe.detector.threshold,
        patience=recipe.detector.patience,
        log_path=None if run_dir is None else Path(run_dir) / ZERO_FRACTION_FILE,
    )
    all_callbacks = [
        keras.callbacks.TerminateOnNaN(),
        LearningRateLogger(),
        EpochSeeds(recipe.seed, data),
        detector,
    ]
    if recipe.optimizer.ema_momentum is not None:
        all_callbacks.append(keras.callbacks.SwapEMAWeights())
    if run_dir is not None:
        all_callbacks += _run_folder_callbacks(Path(run_dir))
    with warnings.catch_warnings():
        # A validation set of unknown length ends by running out of data, as it should.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        history = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=training.epochs,
            callbacks=[*callbacks, *all_callbacks],
            shuffle=False,  # the dataset shuffles itself
            verbose=verbose,
        )
    if detector.tripped:
        raise DeadNetworkError(detector.message)
    return TrainingResult(model, history.history, None if run_dir is None else Path(run_dir))


def train(recipe, *, output=None, callbacks=(), verbose="auto"):
    """Train the network `recipe` describes on its data into its run folder (`output` if given).

    Running it again on an unfinished folder resumes from the last finished epoch; on a finished
    one it returns the saved model. `callbacks` are added to the recipe's. Prints how many
    unreadable images were skipped.
    """
    run_dir = Path(output) if output is not None else recipe.run_dir
    placement = distribution.resolve(recipe)
    if placement.process_id > 0:  # the other hosts of a JAX job keep their own logs apart
        run_dir = run_dir / f"process_{placement.process_id}"
    _claim_run_folder(run_dir, recipe)
    if (run_dir / MODEL_FILE).exists():
        print(f"{run_dir} already holds a finished run; its model is {run_dir / MODEL_FILE}.")
        return TrainingResult(keras.saving.load_model(run_dir / MODEL_FILE), {}, run_dir)
    # The model and optimizer are built inside the placement's strategy or distribution.
    with _run_settings(recipe), placement.scope():
        data = make_datasets(
            recipe.data,
            image_size=recipe.model.input_size,
            batch_size=placement.process_batch,
            seed=recipe.seed,
            shard=placement.shard,
        )
        placement.check_validation_split(data.validation_examples)
        steps_per_epoch = placement.steps_per_epoch(data.train_examples)
        placement.write(run_dir, recipe.training.steps_per_epoch or steps_per_epoch)
        model = build_model(recipe.model, data.num_classes)
        try:
            result = fit(
                model,
                placement.scaled(recipe),
                data.train,
                data.validation,
                run_dir=run_dir,
                batches_per_epoch=steps_per_epoch,
                data=data,
                callbacks=callbacks,
                verbose=verbose,
            )
        except DeadNetworkError as error:
            (run_dir / DEAD_NETWORK_FILE).write_text(f"{error}\n")
            model.save(run_dir / LAST_ALIVE_FILE)
            raise
        finally:
            if data.skipped.count:
                print(f"Skipped {data.skipped.count} unreadable images.")
            if (run_dir / LOG_FILE).exists():
                plotting.plot_runs([run_dir], run_dir / CURVES_FILE)
    model.save(run_dir / MODEL_FILE)
    print(
        f"Finished: model {run_dir / MODEL_FILE}, curves {run_dir / CURVES_FILE}, log {run_dir / LOG_FILE}."
    )
    return result


def _claim_run_folder(run_dir, recipe):
    """Write the resolved recipe into `run_dir`, refusing a folder that holds another recipe."""
    text = recipe_to_toml(recipe)
    recipe_file = run_dir / RECIPE_FILE
    if recipe_file.exists() and recipe_file.read_text() != text:
        raise RecipeError(
            f"{run_dir} holds a run of a different recipe (see {recipe_file}); "
            "give another output folder, or the same recipe to resume that run."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    recipe_file.write_text(text)


@contextlib.contextmanager
def _run_settings(recipe):
    """Seed, determinism and precision policy for the run; the previous policy comes back after."""
    previous_policy = keras.mixed_precision.global_policy()
    keras.utils.set_random_seed(recipe.seed)
    if recipe.training.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(resolve_precision(recipe.training.precision))
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _run_folder_callbacks(run_dir):
    """Logging, checkpoints and the backup. BackupAndRestore comes last so that on resume it
    restores before training starts and, at each epoch end, backs up after the log is written
    (a kill in between repeats a log row rather than losing one)."""
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    return [
        keras.callbacks.CSVLogger(run_dir / LOG_FILE, append=True),
        keras.callbacks.TensorBoard(run_dir / "tensorboard"),
        keras.callbacks.ModelCheckpoint(run_dir / "checkpoints" / "epoch_{epoch:03d}.keras"),
        keras.callbacks.BackupAndRestore(run_dir / BACKUP_DIR),
    ]


def _epochs_of(dataset, steps):
    """`steps` batches drawn from `dataset` repeated: every epoch has the same length, known to
    Keras from the start, even when a pass of `dataset` is longer, shorter or drops unreadable
    images; Keras opens a fresh iterator each epoch (after `on_epoch_begin`), so each epoch
    starts a new shuffle."""
    return dataset.repeat().take(steps)


def _count_batches(dataset):
    batches = int(dataset.cardinality())
    if batches < 0:
        raise ValueError(
            "The training dataset's length is unknown (or infinite): set training.steps_per_epoch."
        )
    return batches


def _with_one_hot_targets(dataset, num_classes, outputs):
    """Labels as one-hot (label smoothing needs them), repeated for each model output."""

    def one_hot(images, labels):
        if labels.shape.rank == 1:
            labels = tf.one_hot(labels, num_classes)
        return images, labels if outputs == 1 else (labels,) * outputs

    return dataset.map(one_hot, num_parallel_calls=tf.data.AUTOTUNE)
