"""The paper's optimizer, RMSProp, from the recipe; light enough for the package to import it at
start-up, so that saved models compiled with it load after `import keras_inception`."""

import keras


@keras.saving.register_keras_serializable(package="keras_inception")
class ClipAfterAllReduceRMSprop(keras.optimizers.RMSprop):
    """RMSprop whose gradient clipping (`global_clipnorm`) sees the global batch's gradient.

    Keras clips in `BaseOptimizer.apply` (keras/src/optimizers/base_optimizer.py:588, Keras 3.15)
    before the TensorFlow backend sums the replicas' gradients in `_backend_update_step`
    (keras/src/backend/tensorflow/optimizer.py:119). Under MirroredStrategy or TPUStrategy each
    replica's share (its loss already divided by the replica count) is then clipped on its own,
    and the sum may reach replicas x `global_clipnorm`: two CPU replicas moved the weights 14.5%
    away from one device's step on the same batch. On TensorFlow this clips the sum instead; one
    device is unchanged, and JAX's compiled step already clips the global gradient.
    """

    def _clip_gradients(self, grads):
        if keras.backend.backend() == "tensorflow":
            return grads  # clipped after the all-reduce, below
        return super()._clip_gradients(grads)

    def _all_reduce_sum_gradients(self, grads_and_vars):  # the TensorFlow backend's
        grads, variables = zip(*super()._all_reduce_sum_gradients(grads_and_vars))
        return list(zip(super()._clip_gradients(list(grads)), variables))

    def update_step(self, gradient, variable, learning_rate):
        """Keras's RMSprop update in one TensorFlow kernel per variable, where Keras runs about
        ten ops. `ResourceApplyRMSProp` (TF1's RMSProp, the paper's) computes the same thing:
        ms = rho ms + (1 - rho) g^2, mom = momentum mom + lr g / sqrt(ms + epsilon), var -= mom.
        """
        if keras.backend.backend() != "tensorflow" or self.centered or not self.momentum:
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf  # only the TensorFlow backend gets here

        index = self._get_variable_index(variable)
        dtype = variable.dtype
        tf.raw_ops.ResourceApplyRMSProp(
            var=variable.handle,
            ms=self._velocities[index].value.handle,
            mom=self._momentums[index].value.handle,
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
    return ClipAfterAllReduceRMSprop(
        learning_rate=learning_rate,
        rho=optimizer.rho,
        momentum=optimizer.momentum,
        epsilon=optimizer.epsilon,
        global_clipnorm=optimizer.global_clipnorm,
        **averaging,
    )
