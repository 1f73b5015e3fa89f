"""The callbacks Keras does not have: the dead-network detector, a learning-rate and epoch-time
log, per-epoch seeding of dropout and of the training input, the run folder's crash-safe epoch backup, and a
stop on a non-finite loss that says where it happened."""

import time

import keras
import numpy as np
from keras import ops

from keras_inception import faults


def pooled_features_layer(model):
    """The model's first GlobalAveragePooling2D layer (`Logits__AvgPool` in our networks): its
    input is the last block's output, the layer the paper saw die."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.GlobalAveragePooling2D):
            return layer
    raise ValueError(
        f"{model.name} has no GlobalAveragePooling2D layer: give DeadNetworkDetector a "
        "`features_layer` whose output it should watch."
    )


class DeadNetworkDetector(keras.callbacks.Callback):
    """Stop a run whose last block has died, keeping the weights it had while alive.

    Every `check_every` optimizer steps, the fixed `probe_images` go through the model (inference
    mode) up to the features before global pooling, and the fraction of exact zeros (and of
    NaN or infinite values) there is measured, as slim's `zero_fraction` summaries did. A
    healthy network keeps many units active;
    the paper's dying Inception-ResNets "started to produce only zeros". After `patience`
    consecutive checks at or above `threshold` the run stops, the weights of the last healthy
    check are put back at the end of training, and `message` says what happened.

    Each check is kept in `checks` as `(step, zero_fraction)` and, with `log_path`, appended to
    that CSV file (`epoch,step,zero_fraction`) as it happens; the latest value is added to the
    epoch logs as `zero_fraction`, so CSVLogger and TensorBoard record it.

    Args:
        probe_images: one batch of model inputs, the same at every check.
        check_every: optimizer steps between checks.
        threshold: zero fraction, in (0, 1], at or above which a check counts as dead.
        patience: consecutive dead checks that stop the run.
        features_layer: the layer whose output is watched; default the input of the model's first
            GlobalAveragePooling2D.
        log_path: optional CSV file that every check is appended to.
        initial_step: the run's step count when this optimizer started (a fine-tuning phase
            after the first starts a fresh optimizer), added to the optimizer's own count.
    """

    def __init__(
        self,
        probe_images,
        check_every=500,
        threshold=0.99,
        patience=3,
        features_layer=None,
        log_path=None,
        initial_step=0,
    ):
        super().__init__()
        self.initial_step = initial_step
        self._epoch = 0
        self.probe_images = probe_images
        self.check_every = check_every
        self.threshold = threshold
        self.patience = patience
        self.features_layer = features_layer
        self.log_path = log_path
        self.checks = []
        self.message = None
        self._healthy_weights = None
        self._dead_checks = 0

    def set_model(self, model):
        super().set_model(model)
        if self.features_layer is not None:
            features = model.get_layer(self.features_layer).output
        else:
            features = pooled_features_layer(model).input
        self._features = keras.Model(model.input, features, name="dead_network_probe")

    @property
    def tripped(self):
        return self.message is not None

    def zero_fraction(self):
        """The fraction of dead values in the watched features on the probe batch: exact zeros,
        and NaN or infinite values (a diverged network is no more alive than a silent one)."""
        features = self._features(self.probe_images, training=False)
        dead = ops.logical_or(ops.equal(features, 0), ops.logical_not(ops.isfinite(features)))
        return float(ops.convert_to_numpy(ops.mean(ops.cast(dead, "float32"))))

    def on_train_begin(self, logs=None):
        self._healthy_weights = None
        self._dead_checks = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        # On the first epoch, once any backup is restored: the weights the run starts from are
        # the fallback if no check finds the network alive.
        if self._healthy_weights is None:
            self._healthy_weights = self.model.get_weights()
            self._next_check = self._check_after(self._step())

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        if step < self._next_check:
            return
        self._next_check = self._check_after(step)
        fraction = self.zero_fraction()
        self._record(step, fraction)
        if fraction < self.threshold:
            self._healthy_weights = self.model.get_weights()
            self._dead_checks = 0
            return
        self._dead_checks += 1
        if self._dead_checks >= self.patience:
            self.model.stop_training = True
            self.message = self._explain(step, fraction)

    def on_epoch_end(self, epoch, logs=None):
        if self.checks and logs is not None:
            logs["zero_fraction"] = self.checks[-1][1]

    def on_train_end(self, logs=None):
        # After fit's last act (copying the weight average into the model), so this wins.
        if self.tripped:
            self.restore_healthy_weights()

    def restore_healthy_weights(self):
        """Put back the weights of the last healthy check (or those the run started from)."""
        self.model.set_weights(self._healthy_weights)

    def _step(self):
        return self.initial_step + int(ops.convert_to_numpy(self.model.optimizer.iterations))

    def _check_after(self, step):
        return (step // self.check_every + 1) * self.check_every

    def _record(self, step, fraction):
        self.checks.append((step, fraction))
        if self.log_path is not None:
            with open(self.log_path, "a") as file:
                if file.tell() == 0:
                    file.write("epoch,step,zero_fraction\n")
                file.write(f"{self._epoch},{step},{fraction}\n")

    def _explain(self, step, fraction):
        healthy = [check for check in self.checks if check[1] < self.threshold]
        restored = (
            f"the weights of the last healthy check (step {healthy[-1][0]}, zero fraction "
            f"{healthy[-1][1]:.4f})"
            if healthy
            else "the weights this run started from (no check found the network alive)"
        )
        return (
            f"Dead network: at step {step} the features before global pooling were "
            f"{fraction:.2%} exact zeros on the probe batch, at or above the threshold "
            f"{self.threshold:.2%} for {self.patience} consecutive checks "
            f"{self.check_every} steps apart. Training stopped; the model holds {restored}. "
            "This is the paper's dying residual network: try a lower residual scale "
            "(model.residual_scale, the paper uses 0.1 to 0.3), or a lower learning rate."
        )


class EpochLogger(keras.callbacks.Callback):
    """Add the optimizer's current learning rate to the epoch logs (schedules are not logged),
    and the epoch's wall-clock seconds (training and validation) as `epoch_seconds`, so that
    runs can be compared against time as well as epochs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
            logs["learning_rate"] = float(ops.convert_to_numpy(optimizer.learning_rate))
            logs["epoch_seconds"] = time.perf_counter() - self._epoch_start


class EpochSeeds(keras.callbacks.Callback):
    """Re-seed the model's random layers (dropout) from `(seed, epoch)` at each epoch start,
    and key the training data on the epoch too when given `data` (a `DataBundle`).

    A Keras backup holds the weights and the optimizer, not the random generators' states, so a
    resumed run would otherwise draw other dropout masks than the run it continues. Seeding each
    epoch from its number makes a resumed epoch draw exactly the masks of the uninterrupted one;
    `data.set_epoch` runs before Keras opens the epoch's iterator, so the epoch also reads the
    same order and augmentation.
    """

    def __init__(self, seed, data=None):
        super().__init__()
        self.seed = seed
        self.data = data

    def on_epoch_begin(self, epoch, logs=None):
        if self.data is not None:
            self.data.set_epoch(epoch)
        generators = [
            layer.seed_generator
            for layer in self.model.layers
            if isinstance(getattr(layer, "seed_generator", None), keras.random.SeedGenerator)
        ]
        for index, generator in enumerate(generators):
            state = np.random.SeedSequence([self.seed, epoch, index]).generate_state(2) >> 1
            generator.state.assign(state.astype(generator.state.dtype))


class EpochBackup(keras.callbacks.Callback):
    """At each epoch's end, after the logs are written: the epoch's checkpoint and the backup to
    resume from, each written whole or not at all (`RunFolder`). An epoch whose loss is not
    finite is neither: a run must not resume from NaN weights."""

    def __init__(self, run):
        super().__init__()
        self.run = run

    def on_train_batch_end(self, batch, logs=None):
        faults.reached("batch_end")

    def on_epoch_end(self, epoch, logs=None):
        faults.reached("epoch_end")
        if logs is not None and not np.isfinite(logs.get("loss", 0.0)):
            return
        self.run.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        self.run.save_model(self.model, self.run.checkpoint_file(epoch + 1), "checkpoint_write")
        self.run.save_backup(self.model, epoch + 1)


class StopOnNonFinite(keras.callbacks.Callback):
    """Stop training at the first batch whose loss is NaN or infinite (Keras's TerminateOnNaN,
    keeping where and what for the error the trainer raises)."""

    def __init__(self):
        super().__init__()
        self.message = None

    @property
    def tripped(self):
        return self.message is not None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or np.isfinite(loss):
            return
        step = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        self.model.stop_training = True
        optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
        rate = float(ops.convert_to_numpy(optimizer.learning_rate))
        self.message = (
            f"The loss became {float(loss)} at optimizer step {step} (batch {batch}): training "
            f"stopped. The learning rate was {rate:g}; try a lower optimizer.learning_rate, keep "
            'optimizer.global_clipnorm set, or training.precision = "float32".'
        )
