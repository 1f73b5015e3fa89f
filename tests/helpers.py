"""What the test modules share: the networks to parametrise over, small inputs, the one way to
randomise a model, inference runs and slim checkpoints written from arrays.

Test modules import it as `helpers` (pytest puts this folder on sys.path).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_inception.models import networks

# The smallest input every network takes, and one block per stage: depth changes no shape.
SMALL = 75
TINY_DEPTHS = (1, 1, 1)


def network_params():
    """One pytest parameter per registered network (its `NetworkSpec`), with its name as id."""
    return [pytest.param(spec, id=spec.name) for spec in networks()]


def images(count=2, size=SMALL, seed=0):
    """`count` deterministic RGB images of `size` x `size`, already scaled to [-1, 1]."""
    return np.random.default_rng(seed).uniform(-1, 1, (count, size, size, 3)).astype("float32")


def randomise(model, seed=0):
    """Give every weight of a Keras model seeded random values: kernels at their fan-in scale,
    vectors small, BN variances in [0.5, 1.5], so that no layer (BN included) is an identity and
    a weight that silently failed to load shows in the outputs."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "variance" in variable.name:
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) > 1:
            value = rng.normal(0, 1 / np.sqrt(np.prod(shape[:-1])), shape)
        else:
            value = rng.normal(0, 0.1, shape)
        variable.assign(value.astype("float32"))
    return model


def run(model, x):
    """The model's outputs in inference mode, as arrays (a direct call: `predict` would trace the
    whole graph first, which is slower for these one-off calls)."""
    outputs = model(x, training=False)
    if isinstance(outputs, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in outputs]
    return keras.ops.convert_to_numpy(outputs)


def write_slim_checkpoint(prefix, tensors):
    """Write `tensors` (full slim names) as a TF checkpoint, the way slim's Saver names them."""
    names = sorted(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(tensors[name]) for name in names],
    )
    return str(prefix)
