"""Every use of a private Keras or keras-cv attribute, fenced in one module.

Each is here because no public API does the job (named below), and
tests/test_keras_internals.py checks that the upstream shape it relies on is still there, so an
upgrade fails loudly in one place instead of silently training differently. setup.cfg bounds
Keras and keras-cv to the versions these were written against.
"""

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
        return list(zip(super()._clip_gradients(list(grads)), variables))


def rmsprop_slots(optimizer, variable):
    """The mean-square and momentum slot variables a Keras RMSprop keeps for `variable` (Keras
    exposes them only as private lists, which a fused update kernel needs by variable)."""
    index = optimizer._get_variable_index(variable)
    return optimizer._velocities[index], optimizer._momentums[index]


def set_random_generator(layer, generator):
    """Make a keras-cv preprocessing layer draw its random numbers from `generator` (a
    `tf.random.Generator`); keras-cv takes only a seed, which cannot replay a resumed epoch."""
    layer._random_generator = generator
