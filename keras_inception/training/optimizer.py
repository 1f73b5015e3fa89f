"""The paper's optimizer, RMSProp, from the recipe; light enough for the package to import it at
start-up, so that saved models compiled with it load after `import keras_inception`."""

import keras

from keras_inception.keras_internals import ClipAfterAllReduce, rmsprop_slots


@keras.saving.register_keras_serializable(package="keras_inception")
class GlobalClipFusedRMSprop(ClipAfterAllReduce, keras.optimizers.RMSprop):
    """Keras's RMSprop with two changes on TensorFlow: `global_clipnorm` clips the global
    batch's gradient (after the replicas' all-reduce, see `ClipAfterAllReduce`), and the update
    runs in one fused kernel per variable.

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
            lr=tf.cast(learning_rate, dtype),
            rho=tf.cast(self.rho, dtype),
            momentum=tf.cast(self.momentum, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


def build_optimizer(recipe, steps_per_epoch):
    """RMSProp with the recipe's staircase exponential decay, global clipping and weight average."""
    optimizer, schedule = recipe.optimizer, recipe.schedule
    learning_rate = keras.optimizers.schedules.ExponentialDecay(
        optimizer.learning_rate,
        decay_steps=max(1, round(schedule.decay_epochs * steps_per_epoch)),
        decay_rate=schedule.decay_rate,
        staircase=schedule.staircase,
    )
    averaging = {}
    if optimizer.ema_momentum is not None:
        averaging = {"use_ema": True, "ema_momentum": optimizer.ema_momentum}
    return GlobalClipFusedRMSprop(
        learning_rate=learning_rate,
        rho=optimizer.rho,
        momentum=optimizer.momentum,
        epsilon=optimizer.epsilon,
        global_clipnorm=optimizer.global_clipnorm,
        **averaging,
    )
