"""The optimizers a recipe names, from Keras's own: RMSProp (the paper's), SGD with momentum and
AdamW, each clipping the global gradient and keeping slim's weight average; light enough for the
package to import at start-up, so that saved models compiled with one load after
`import keras_inception`."""

import weakref

import keras

from keras_inception.keras_internals import ClipAfterAllReduce, SlimWeightAverage, rmsprop_slots

PAPER_RMSPROP_EPSILON = 1.0  # where the recipe leaves optimizer.epsilon out
SCALARS = ("rho", "momentum", "epsilon")  # ResourceApplyRMSProp's, as Keras's RMSprop names them


@keras.saving.register_keras_serializable(package="keras_inception")
class GlobalClipFusedRMSprop(SlimWeightAverage, ClipAfterAllReduce, keras.optimizers.RMSprop):
    """Keras's RMSprop with three changes on TensorFlow: `global_clipnorm` clips the global
    batch's gradient (after the replicas' all-reduce, see `ClipAfterAllReduce`), the weight
    average is slim's (`SlimWeightAverage`), and the update runs in one fused kernel per variable.

    Keras runs about ten ops per variable for the update; `ResourceApplyRMSProp` (TF1's
    RMSProp, the paper's) computes the same thing: ms = rho ms + (1 - rho) g^2,
    mom = momentum mom + lr g / sqrt(ms + epsilon), var -= mom. Centered RMSprop, zero momentum
    and other backends take Keras's own update.
    """

    def update_step(self, gradient, variable, learning_rate):
        if keras.backend.backend() != "tensorflow" or self.centered or not self.momentum:
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf  # only the TensorFlow backend gets here

        mean_square, momentum = rmsprop_slots(self, variable)
        dtype = variable.dtype
        tf.raw_ops.ResourceApplyRMSProp(
            var=variable.handle,
            ms=mean_square.value.handle,
            mom=momentum.value.handle,
            grad=tf.cast(gradient, dtype),
            **self._scalars(learning_rate, dtype),
        )

    def _scalars(self, learning_rate, dtype):
        """The update's scalars as tensors of `dtype`. While a step is traced they are made once
        per dtype, not for every variable (IR-v2 has 490): the first step traces each op."""
        import tensorflow as tf

        if tf.executing_eagerly():  # nothing traced, nothing to share
            return _rmsprop_scalars(self, learning_rate, dtype)
        if "_traced_scalars" not in self.__dict__:
            # Not a dict: Keras's attribute tracking would store a copy of one.
            self._traced_scalars = weakref.WeakKeyDictionary()
        graph = tf.compat.v1.get_default_graph()
        rate, scalars = self._traced_scalars.get(graph, (None, {}))
        if rate is not learning_rate:
            rate, scalars = learning_rate, {}
            self._traced_scalars[graph] = rate, scalars
        if dtype not in scalars:
            scalars[dtype] = _rmsprop_scalars(self, learning_rate, dtype)
        return scalars[dtype]


def _rmsprop_scalars(optimizer, learning_rate, dtype):
    import tensorflow as tf

    return {
        "lr": tf.cast(learning_rate, dtype),
        **{name: tf.constant(getattr(optimizer, name), dtype) for name in SCALARS},
    }


@keras.saving.register_keras_serializable(package="keras_inception")
class GlobalClipSGD(SlimWeightAverage, ClipAfterAllReduce, keras.optimizers.SGD):
    """Keras's SGD, with the global batch's gradient clipped and slim's weight average."""


@keras.saving.register_keras_serializable(package="keras_inception")
class GlobalClipAdamW(SlimWeightAverage, ClipAfterAllReduce, keras.optimizers.AdamW):
    """Keras's AdamW, with the global batch's gradient clipped and slim's weight average."""


def build_optimizer(recipe, steps_per_epoch, *, learning_rate=None, epochs=None):
    """The recipe's optimizer for a training phase of `epochs` epochs (default
    `training.epochs`) starting at `learning_rate` (default `optimizer.learning_rate`). A new
    optimizer counts its steps from 0, so the schedule spans this phase alone, and the weight
    average (with `ema_momentum`) starts at the weights it is built on."""
    config = recipe.optimizer
    epochs = recipe.training.epochs if epochs is None else epochs
    recipe.schedule.check_length(epochs)
    schedule = _schedule(
        recipe.schedule,
        config.learning_rate if learning_rate is None else learning_rate,
        steps_per_epoch,
        epochs,
    )
    averaging = {}
    if config.ema_momentum is not None:
        averaging = {"use_ema": True, "ema_momentum": config.ema_momentum}
    optimizer_class, settings = _named_optimizer(config)
    return optimizer_class(
        learning_rate=schedule,
        global_clipnorm=config.global_clipnorm,
        **averaging,
        **settings,
    )


def _schedule(config, learning_rate, steps_per_epoch, epochs):
    """The learning-rate schedule `schedule.name` names, from `learning_rate` over `epochs`."""
    if config.name == "cosine":
        warmup_steps = round(config.warmup_epochs * steps_per_epoch)
        return keras.optimizers.schedules.CosineDecay(
            0.0,  # where the warm-up starts
            decay_steps=max(1, epochs * steps_per_epoch - warmup_steps),
            alpha=config.alpha,
            warmup_target=learning_rate,
            warmup_steps=warmup_steps,
        )
    return keras.optimizers.schedules.ExponentialDecay(
        learning_rate,
        decay_steps=max(1, round(config.decay_epochs * steps_per_epoch)),
        decay_rate=config.decay_rate,
        staircase=config.staircase,
    )


def _named_optimizer(config):
    """The class `optimizer.name` names and the settings of the recipe that it alone takes."""
    if config.name == "sgd":
        return GlobalClipSGD, {"momentum": config.momentum, "nesterov": config.nesterov}
    if config.name == "adamw":
        epsilon = {} if config.epsilon is None else {"epsilon": config.epsilon}  # else Keras's
        return GlobalClipAdamW, {"weight_decay": config.decoupled_weight_decay, **epsilon}
    epsilon = PAPER_RMSPROP_EPSILON if config.epsilon is None else config.epsilon
    return GlobalClipFusedRMSprop, {
        "rho": config.rho,
        "momentum": config.momentum,
        "epsilon": epsilon,
    }
