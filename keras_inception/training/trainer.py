"""The trainer: the paper's method assembled from Keras's own optimizer, schedule and callbacks.

`train(recipe)` builds the data and the network a recipe names and trains it into a run folder
(`run_folder.RunFolder` says what it holds); `fit(model, recipe, train_ds, val_ds)` does the same
for a model and data of your own. `fit` is three public pieces, usable alone with `model.fit`:
`steps_per_epoch`, `compile_for_recipe` (training/method.py) and `recipe_callbacks`.
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
from keras_inception.models.class_names import with_class_names
from keras_inception.models.inception_resnet_v1 import (
    embedding_model,
    is_identity_classifier,
    with_identity_classifier,
)
from keras_inception.run_folder import RunFolder, write_text
from keras_inception.training import distribution
from keras_inception.training.callbacks import (
    DeadNetworkDetector,
    EpochBackup,
    EpochLogger,
    EpochSeeds,
    StopOnNonFinite,
)
from keras_inception.training.finetune import set_trainable, training_phases
from keras_inception.training.method import compile_for_recipe
from keras_inception.training.precision import resolve_precision
from keras_inception.training.recipe import recipe_to_toml
from keras_inception.weights.transfer import is_random, load_initial_weights, write_report


@dataclass
class TrainingResult:
    """What a finished `train` or `fit` leaves: the trained model (`final_model`), the per-epoch
    logs of this call (`keras.callbacks.History.history`), and the run folder if there is one."""

    model: keras.Model
    history: dict
    run_dir: Path | None = None


def build_model(config, num_classes, class_names=None):
    """The network a recipe's `[model]` section describes, with a softmax over `num_classes`
    (named by `class_names`, which then travel with the model), and without its weights: the
    trainer loads `config.weights` (`load_recipe_weights`). With `embedding_size`, the softmax
    is FaceNet's identity classifier on the embedding head, which the final model drops
    (`final_model`)."""
    model = get_network(config.network).factory(**config.factory_arguments(num_classes))
    if config.embedding_size is not None:
        model = with_identity_classifier(model, num_classes)
    return model if class_names is None else with_class_names(model, class_names)


def final_model(model):
    """What a finished run saves: the trained model, or for an identity classifier its
    embedding model (the classifier only served training, as in facenet's train_softmax.py)."""
    return embedding_model(model) if is_identity_classifier(model) else model


def load_recipe_weights(model, config):
    """Load the weights a `[model]` section names into `model` (backbone strictly, each head
    where it fits) and return the `TransferReport`, or None for a random start."""
    if is_random(config.weights):
        return None
    return load_initial_weights(model, config.weights, config.network, config.depths)


def recipe_callbacks(recipe, probe_images, run=None, data=None, initial_step=0):
    """The recipe's callbacks: the stop on a non-finite loss, the learning-rate and epoch-time
    log, per-epoch seeds (keyed on `data`, a `DataBundle`, when given), the dead-network detector on
    `probe_images` (counting steps from `initial_step`), the weight-average swap and, with a
    `RunFolder` `run`, its CSV and TensorBoard logs, then each epoch's checkpoint and backup
    (after the logs, so that a resumed run cuts the log back to its backup)."""
    detector = recipe.detector
    callbacks = [
        StopOnNonFinite(),
        EpochLogger(),
        EpochSeeds(recipe.seed, data),
        DeadNetworkDetector(
            probe_images,
            check_every=detector.check_every,
            threshold=detector.threshold,
            patience=detector.patience,
            log_path=None if run is None else run.zero_fraction_file,
            initial_step=initial_step,
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
    `steps_per_epoch(recipe, train_ds, batches_per_epoch)` batches. The run trains in the
    recipe's phases (`finetune.training_phases`: the head alone first with `finetune.head_epochs`),
    each with the layers it trains and a fresh optimizer; a recipe without `[finetune]` trains
    whatever the model's own trainable flags say. With `run_dir`, the run keeps its logs,
    checkpoints and backup there, resumes from the backup if one exists (in the phase the backup
    belongs to), and once trained saves the final model (`final_model`), the curves and the
    finished marker.
    `data`, the `DataBundle` that `train_ds` comes from if it does, is told each epoch's number,
    so that a resumed epoch reads the same data. `callbacks` are added to the recipe's.

    Raises `DeadNetworkError` if the dead-network detector stops the run, `NonFiniteLossError`
    if the loss becomes NaN or infinite; either way the model then holds the weights of the last
    healthy check.
    """
    num_classes = model.outputs[0].shape[-1]
    steps = steps_per_epoch(recipe, train_ds, batches_per_epoch)
    train_ds = _with_one_hot_targets(_epochs_of(train_ds, steps), num_classes, len(model.outputs))
    if val_ds is not None:
        val_ds = _with_one_hot_targets(val_ds, num_classes, len(model.outputs))
    probe_source = val_ds if val_ds is not None else train_ds
    probe = next(iter(probe_source.unbatch().batch(recipe.detector.probe_size)))[0]
    run = None if run_dir is None else RunFolder(run_dir)
    done = 0 if run is None else run.epochs_done()
    history = {}
    phases = training_phases(recipe)
    # Without a [finetune] section the model's own trainable flags are left as they are.
    freezes = len(phases) > 1 or phases[0].trainable != "all"
    for phase in phases:
        if done > phase.end_epoch:
            continue  # a later phase's state is restored below
        if freezes:
            trained = set_trainable(model, phase.trainable, recipe.model.network)
            print(
                f"Phase {phase.name!r}: epochs {phase.start_epoch + 1}-{phase.end_epoch} train "
                f"{len(trained)} layers ({_describe(phase.trainable)}) from learning rate "
                f"{phase.learning_rate:g}; the others are frozen."
            )
        compile_for_recipe(model, recipe, steps, phase)
        initial_epoch = phase.start_epoch if run is None else run.restore(model, phase.start_epoch)
        phase_callbacks = recipe_callbacks(recipe, probe, run, data, phase.start_epoch * steps)
        # Each epoch of a phase that a resumed run had already finished is skipped by Keras,
        # whose end of training still puts the weight average into the model, as the
        # uninterrupted run did.
        result = _fit_checked(
            model,
            phase_callbacks,
            train_ds,
            validation_data=val_ds,
            epochs=phase.end_epoch,
            initial_epoch=initial_epoch,
            callbacks=[*callbacks, *phase_callbacks],
            verbose=verbose,
        )
        for key, values in result.history.items():
            history.setdefault(key, []).extend(values)
    model = final_model(model)
    if run is not None:
        faults.reached("after_fit")
        _finish(run, model, recipe.training.epochs)
    return TrainingResult(model, history, None if run is None else run.path)


def _describe(trainable):
    return trainable if isinstance(trainable, str) else ", ".join(trainable)


def _fit_checked(model, recipe_callbacks, train_ds, **fit_arguments):
    """`model.fit`, then raise if the recipe's detector or non-finite stop tripped."""
    (detector,) = [c for c in recipe_callbacks if isinstance(c, DeadNetworkDetector)]
    (non_finite,) = [c for c in recipe_callbacks if isinstance(c, StopOnNonFinite)]
    with warnings.catch_warnings():
        # A validation set of unknown length ends by running out of data, as it should.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        # The dataset shuffles itself.
        result = model.fit(train_ds, shuffle=False, **fit_arguments)
    if non_finite.tripped:
        detector.restore_healthy_weights()
        raise NonFiniteLossError(non_finite.message)
    if detector.tripped:
        raise DeadNetworkError(detector.message)
    return result


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
        model = build_model(recipe.model, data.num_classes, data.class_names)
        loaded = load_recipe_weights(model, recipe.model)
        for phase in training_phases(recipe):  # a scope that names no layer fails here
            set_trainable(model, phase.trainable, recipe.model.network)
        run.claim(recipe_to_toml(recipe))  # everything is checked: the folder is this run's
        run.write_distribution(placement.describe(steps))
        run.write_data_record(data.class_names, data.split_files)
        if loaded is not None:
            write_report(run.weights_file, loaded)
            print(loaded.summary())
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
