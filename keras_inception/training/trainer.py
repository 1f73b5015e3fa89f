"""The trainer: the paper's method assembled from Keras's own optimizer, schedule and callbacks.

`train(recipe)` builds the data and the network a recipe names and trains it into a run folder
(`run_folder.RunFolder` says what it holds); `fit(model, recipe, train_ds, val_ds)` does the same
for a model and data of your own. `fit` is three public pieces, usable alone with `model.fit`:
`steps_per_epoch`, `compile_for_recipe` and `recipe_callbacks`.
"""

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from keras_inception import faults, plotting
from keras_inception.data import make_datasets
from keras_inception.errors import DeadNetworkError, NonFiniteLossError, StoppedRunError
from keras_inception.models import get_network
from keras_inception.run_folder import RunFolder, write_text
from keras_inception.training import distribution
from keras_inception.training.callbacks import (
    DeadNetworkDetector,
    EpochBackup,
    EpochSeeds,
    LearningRateLogger,
    StopOnNonFinite,
)
from keras_inception.training.optimizer import build_optimizer
from keras_inception.training.precision import resolve_precision
from keras_inception.training.recipe import recipe_to_toml


@dataclass
class TrainingResult:
    """What a finished `train` or `fit` leaves: the trained model, the per-epoch logs of this
    call (`keras.callbacks.History.history`), and the run folder if there is one."""

    model: keras.Model
    history: dict
    run_dir: Path | None = None


def build_model(config, num_classes):
    """The network a recipe's `[model]` section describes, with a softmax over `num_classes`."""
    return get_network(config.network).factory(**config.factory_arguments(num_classes))


def add_weight_decay(model, weight_decay):
    """Slim's weight decay: an L2 penalty on every trainable convolution and dense kernel.

    Slim's `l2_regularizer(4e-5)` adds 4e-5 * sum(w**2) / 2 to the loss; `keras.regularizers.L2`
    has no halving, hence the factor. A penalty in the loss (rather than the optimizer's decoupled
    `weight_decay`) is what the paper trained with: it goes through RMSProp's scaling and the
    gradient clipping like any other gradient. The regulariser is set in each layer's config as
    well as on its kernel, so a saved and reloaded model keeps it.
    """
    if not weight_decay:
        return
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if layer.trainable and kernel is not None and hasattr(layer, "kernel_regularizer"):
            layer.kernel_regularizer = keras.regularizers.L2(weight_decay / 2)
            kernel.regularizer = layer.kernel_regularizer


def compile_for_recipe(model, recipe, steps_per_epoch):
    """Compile for the recipe: label-smoothed cross-entropy on one-hot labels (weighted by
    `aux_loss_weight` on a second, auxiliary output), top-1 and top-5 accuracy, slim's weight
    decay, and RMSProp with the recipe's schedule."""
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


def recipe_callbacks(recipe, probe_images, run=None, data=None):
    """The recipe's callbacks: the stop on a non-finite loss, the learning-rate log, per-epoch
    seeds (keyed on `data`, a `DataBundle`, when given), the dead-network detector on
    `probe_images`, the weight-average swap and, with a `RunFolder` `run`, its CSV and TensorBoard
    logs, then each epoch's checkpoint and backup (after the logs, so that a resumed run cuts the
    log back to its backup)."""
    detector = recipe.detector
    callbacks = [
        StopOnNonFinite(),
        LearningRateLogger(),
        EpochSeeds(recipe.seed, data),
        DeadNetworkDetector(
            probe_images,
            check_every=detector.check_every,
            threshold=detector.threshold,
            patience=detector.patience,
            log_path=None if run is None else run.zero_fraction_file,
        ),
    ]
    if recipe.optimizer.ema_momentum is not None:
        callbacks.append(keras.callbacks.SwapEMAWeights())
    if run is not None:
        callbacks += [
            keras.callbacks.CSVLogger(run.log_file, append=True),
            keras.callbacks.TensorBoard(run.tensorboard_dir),
            EpochBackup(run),
        ]
    return callbacks


def steps_per_epoch(recipe, dataset=None, batches_per_epoch=None):
    """Optimizer steps per epoch: `training.steps_per_epoch`, else one pass of the data
    (`batches_per_epoch` where tf.data cannot count `dataset`'s batches)."""
    steps = recipe.training.steps_per_epoch or batches_per_epoch
    if steps:
        return steps
    batches = int(dataset.cardinality())
    if batches < 0:
        raise ValueError(
            "The training dataset's length is unknown (or infinite): set training.steps_per_epoch."
        )
    return batches


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
    `steps_per_epoch(recipe, train_ds, batches_per_epoch)` batches. With `run_dir`, the run keeps
    its logs, checkpoints and backup there, resumes from the backup if one exists, and once
    trained saves the final model, the curves and the finished marker. `data`, the `DataBundle`
    that `train_ds` comes from if it does, is told each epoch's number, so that a resumed epoch
    reads the same data. `callbacks` are added to the recipe's.

    Raises `DeadNetworkError` if the dead-network detector stops the run, `NonFiniteLossError`
    if the loss becomes NaN or infinite; either way the model then holds the weights of the last
    healthy check.
    """
    num_classes = model.outputs[0].shape[-1]
    steps = steps_per_epoch(recipe, train_ds, batches_per_epoch)
    train_ds = _with_one_hot_targets(_epochs_of(train_ds, steps), num_classes, len(model.outputs))
    if val_ds is not None:
        val_ds = _with_one_hot_targets(val_ds, num_classes, len(model.outputs))
    compile_for_recipe(model, recipe, steps)
    probe_source = val_ds if val_ds is not None else train_ds
    probe = next(iter(probe_source.unbatch().batch(recipe.detector.probe_size)))[0]
    run = None if run_dir is None else RunFolder(run_dir)
    all_callbacks = recipe_callbacks(recipe, probe, run, data)
    (detector,) = [c for c in all_callbacks if isinstance(c, DeadNetworkDetector)]
    (non_finite,) = [c for c in all_callbacks if isinstance(c, StopOnNonFinite)]
    with warnings.catch_warnings():
        # A validation set of unknown length ends by running out of data, as it should.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        history = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=recipe.training.epochs,
            initial_epoch=0 if run is None else run.restore(model),
            callbacks=[*callbacks, *all_callbacks],
            shuffle=False,  # the dataset shuffles itself
            verbose=verbose,
        )
    if non_finite.tripped:
        detector.restore_healthy_weights()
        raise NonFiniteLossError(non_finite.message)
    if detector.tripped:
        raise DeadNetworkError(detector.message)
    if run is not None:
        faults.reached("after_fit")
        _finish(run, model, recipe.training.epochs)
    return TrainingResult(model, history.history, None if run is None else run.path)


def _finish(run, model, epochs):
    """Save what a finished run leaves, each file whole, then the marker that says so."""
    run.save_model(model, run.model_file, "final_write")
    plotting.plot_runs([run.path], run.curves_file)
    run.mark_finished({"model": run.model_file.name, "epochs": epochs})


def train(recipe, *, output=None, restart=False, callbacks=(), verbose="auto"):
    """Train the network `recipe` describes on its data into its run folder (`output` if given).

    Running it again on an unfinished folder resumes from the last finished epoch; on a finished
    one it returns the saved model. A run that stopped (dead network, non-finite loss) is not
    started again unless `restart`, which first moves what the folder holds to `attempts/N/`.
    Nothing is written into the folder before the recipe, the data and the model have been
    checked. `callbacks` are added to the recipe's. Prints how many unreadable images were
    skipped.
    """
    run_dir = Path(output) if output is not None else recipe.run_dir
    placement = distribution.resolve(recipe)
    if placement.process_id > 0:  # the other hosts of a JAX job keep their own logs apart
        run_dir = run_dir / f"process_{placement.process_id}"
    run = RunFolder(run_dir)
    if restart and (moved := run.archive()):
        print(f"Restarting: what {run.path} held is now in {moved}.")
    _refuse_a_stopped_run(run)
    run.check_recipe(recipe_to_toml(recipe))
    if run.finished:
        print(f"{run.path} already holds a finished run; its model is {run.model_file}.")
        return TrainingResult(keras.saving.load_model(run.model_file), {}, run.path)
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
        steps = steps_per_epoch(
            recipe, batches_per_epoch=placement.steps_per_epoch(data.train_examples)
        )
        model = build_model(recipe.model, data.num_classes)
        run.claim(recipe_to_toml(recipe))  # everything is checked: the folder is this run's
        run.write_distribution(placement.describe(steps))
        try:
            result = fit(
                model,
                placement.scaled(recipe),
                data.train,
                data.validation,
                run_dir=run.path,
                batches_per_epoch=steps,
                data=data,
                callbacks=callbacks,
                verbose=verbose,
            )
        except DeadNetworkError as error:
            write_text(run.dead_network_file, f"{error}\n")
            _record_stop(run, model, "dead_network", error, run.last_alive_file)
            raise
        except NonFiniteLossError as error:
            _record_stop(run, model, "non_finite_loss", error, run.last_good_file)
            raise
        finally:
            if data.skipped.count:
                print(data.skipped.report())
    print(f"Finished: model {run.model_file}, curves {run.curves_file}, log {run.log_file}.")
    return result


def _record_stop(run, model, reason, error, weights_file):
    """Keep the healthy weights the model holds after a stop, then mark the run stopped."""
    run.save_model(model, weights_file)
    if run.log_file.exists():
        plotting.plot_runs([run.path], run.curves_file)
    run.record_stop(reason, error.status, str(error), weights_file)


def _refuse_a_stopped_run(run):
    record = run.stop_record()
    if record is not None:
        raise StoppedRunError(
            f"{run.path} holds a run that stopped ({record['reason']}): {record['message']} "
            f"Its healthy weights are in {record['weights']}. Run again with --restart "
            "(train(..., restart=True)) to start over; what the folder holds moves to attempts/.",
            record["status"],
        )


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


def _epochs_of(dataset, steps):
    """`steps` batches drawn from `dataset` repeated: every epoch has the same length, known to
    Keras from the start, even when a pass of `dataset` is longer, shorter or drops unreadable
    images; Keras opens a fresh iterator each epoch (after `on_epoch_begin`), so each epoch
    starts a new shuffle."""
    return dataset.repeat().take(steps)


def _with_one_hot_targets(dataset, num_classes, outputs):
    """Labels as one-hot (label smoothing needs them), repeated for each model output."""

    def one_hot(images, labels):
        if labels.shape.rank == 1:
            labels = tf.one_hot(labels, num_classes)
        return images, labels if outputs == 1 else (labels,) * outputs

    return dataset.map(one_hot, num_parallel_calls=tf.data.AUTOTUNE)
