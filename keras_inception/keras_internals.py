"""Every use of a private Keras, keras-cv or TensorFlow attribute, fenced in one module.

Each is here because no public API does the job (named below), and
tests/test_keras_internals.py checks that the upstream shape it relies on is still there, so an
upgrade fails loudly in one place instead of silently training differently. setup.cfg bounds
Keras and keras-cv to the versions these were written against.
"""

import contextlib

import keras


class ClipAfterAllReduce:
    """Optimizer mixin: on TensorFlow, `global_clipnorm` clips the gradient summed over the
    replicas, not each replica's share.

    Keras clips in `BaseOptimizer.apply` (`_clip_gradients`) before the TensorFlow backend sums
    the replicas' gradients (`_all_reduce_sum_gradients`). Under MirroredStrategy or
    TPUStrategy each replica's share (its loss already divided by the replica count) is then
    clipped on its own, and the sum may reach replicas x `global_clipnorm`: two CPU replicas
    moved the weights 14.5% away from one device's step on the same batch. This moves the clip
    after the sum; one device is unchanged, and JAX's compiled step already clips the global
    gradient. Keras has no public hook between the two.
    """

    def _clip_gradients(self, grads):
        if keras.backend.backend() == "tensorflow":
            return grads  # clipped after the all-reduce, below
        return super()._clip_gradients(grads)

    def _all_reduce_sum_gradients(self, grads_and_vars):  # the TensorFlow backend's
        grads, variables = zip(*super()._all_reduce_sum_gradients(grads_and_vars))
        if not self.global_clipnorm:
            return list(zip(super()._clip_gradients(list(grads)), variables))
        return list(zip(_clip_by_global_norm(grads, self.global_clipnorm), variables))


def _clip_by_global_norm(grads, clip_norm):
    """Keras's `clip_by_global_norm` (the same scale, NaN for a non-finite norm) with the norm
    summed from TensorFlow's `L2Loss` (sum(g**2) / 2, one op a gradient), as
    `tf.clip_by_global_norm` does, instead of Keras's square, sum and its axes: IR-v2's traced
    training step has 980 ops fewer."""
    import tensorflow as tf  # only the TensorFlow backend gets here

    halves = [tf.cast(tf.nn.l2_loss(g), "float32") for g in grads if g is not None]
    norm = tf.sqrt(2.0 * tf.add_n(halves))
    scale = clip_norm * tf.minimum(1.0 / norm, 1.0 / clip_norm) + (norm - norm)
    return [None if g is None else g * tf.cast(scale, g.dtype) for g in grads]


def average_decay(step, decay):
    """The weight average's decay at optimizer step `step` (0 for the first), slim's
    `tf.train.ExponentialMovingAverage(decay, num_updates=global_step)`:
    min(decay, (1 + step) / (10 + step)). The short memory of the first steps lets the average
    follow the weights out of their initialisation instead of holding it for ~1 / (1 - decay)
    steps."""
    step = keras.ops.cast(step, "float32")
    return keras.ops.minimum(decay, (1.0 + step) / (10.0 + step))


class SlimWeightAverage:
    """Optimizer mixin: the weight average of `use_ema` kept as slim kept it, starting at the
    variables' values when the optimizer is built and decaying by `average_decay`.

    Keras's average starts at zero, copies the variables at the first step and decays by
    `ema_momentum` from then on, so at 0.9999 it holds the random initialisation for thousands
    of steps (the quickstart validated at chance for epochs). Keras has no public hook for
    either. Its `build` adds the averages as the optimizer variables named "average"; this gives
    them the variables as initial value (an initializer rather than an assignment, so that it also
    holds when `model.fit` builds the optimizer inside its first traced step), and overrides
    `_update_model_variables_moving_average`, which Keras calls before it counts the step, so
    `iterations` is the step being taken. The end of `fit` copies the averages into the model
    (`_overwrite_model_variables_with_average_value`) rather than sharing them.
    """

    def add_variable_from_reference(self, reference_variable, name=None, initializer="zeros"):
        if name == "average":

            def initializer(shape, dtype):
                # A copy: JAX donates each optimizer variable's buffer to the step, and a cast to
                # the same dtype would share the model variable's.
                return keras.ops.copy(keras.ops.cast(reference_variable, dtype))

        return super().add_variable_from_reference(reference_variable, name, initializer)

    def _update_model_variables_moving_average(self, trainable_variables):
        decay = average_decay(self.iterations, self.ema_momentum)
        weights = {}  # per dtype, made once rather than traced again for each variable
        for variable, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                if variable.dtype not in weights:
                    kept = keras.ops.cast(decay, variable.dtype)
                    weights[variable.dtype] = kept, 1 - kept
                kept, taken = weights[variable.dtype]
                average.assign(kept * average + taken * variable)

    def _overwrite_model_variables_with_average_value(self, trainable_variables):
        # Keras's assigns the average itself, which on JAX leaves each variable sharing its
        # average's buffer; the next step donates both, and a second `fit` with this optimizer
        # failed ("Attempt to donate the same buffer twice"). Keras has no public hook here.
        averages = self._model_variables_moving_average
        for variable, average in zip(trainable_variables, averages, strict=True):
            if average is not None:
                variable.assign(keras.ops.copy(average))


def rmsprop_slots(optimizer, variable):
    """The mean-square and momentum slot variables a Keras RMSprop keeps for `variable` (Keras
    exposes them only as private lists, which a fused update kernel needs by variable)."""
    index = optimizer._get_variable_index(variable)
    return optimizer._velocities[index], optimizer._momentums[index]


def set_random_generator(layer, generator):
    """Make a keras-cv preprocessing layer and every layer inside it (RandAugment's operations)
    draw their own random numbers from `generator` (a `tf.random.Generator`); keras-cv takes only
    a seed, which cannot replay a resumed epoch. Returns those layers, `layer` first."""
    layers = layer._flatten_layers(include_self=True, recursive=True)
    for each in layers:
        each._random_generator = generator
    return layers


@contextlib.contextmanager
def global_generator(generator):
    """Make `generator` TensorFlow's global `tf.random.Generator` inside the block, then put
    back what was there, none included (TensorFlow can set it but not tell whether one is set).

    keras-cv's RandomColorDegeneration, one of RandAugment's operations, passes no seed on, so
    it asks for the global generator, which TensorFlow refuses to create under op determinism.
    """
    import tensorflow as tf  # keras-cv's augmentation, the one user, runs on TensorFlow
    from tensorflow.python.ops import stateful_random_ops

    previous = stateful_random_ops.global_generator
    tf.random.set_global_generator(generator)
    try:
        yield
    finally:
        tf.random.set_global_generator(previous)


def freeze(concrete_function):
    """`concrete_function` (a traced `tf.function`) with every variable it reads replaced by a
    constant of its current value. TensorFlow's own converters freeze this way; TensorFlow 2 has
    no public name for it (`tf.compat.v1.graph_util` freezes sessions, not functions)."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    return convert_variables_to_constants_v2(concrete_function)
