"""TF-slim checkpoints: the authors' ImageNet releases and FaceNet's Inception-ResNet-v1 models.

Slim names variables `<Network>/<scope>/<variable>`, the scopes our layer names spell with `__`, and
stores kernels as `[height, width, in, out]` like Keras: the conversion is renaming only.
"""

import os
import re

from keras_inception.models import get_network, networks
from keras_inception.weights.matching import Source

# Training state inside a network scope: optimizer slots and moving-average shadows (FaceNet
# checkpoints keep them). Variables outside the network scopes (global_step, FaceNet's identity
# classifier `Logits` and center-loss `centers`) are not part of the network either.
TRAINING_STATE = re.compile(r"/(ExponentialMovingAverage|RMSProp(_1)?|Momentum|Adam(_1)?|Adagrad)$")
SHADOW = "/ExponentialMovingAverage"


def read_slim_checkpoint(path, architecture, use_ema=False):
    """Read the network's variables from a slim checkpoint, the network scope removed.

    `path` is a checkpoint prefix (`model.ckpt-90000`), a V1 checkpoint file (`inception_v4.ckpt`)
    or a folder holding one checkpoint. A checkpoint of another of the three networks is read under
    its own scope, so that the mismatch error lists what it holds instead of an empty source.

    `use_ema` reads each variable from its `ExponentialMovingAverage` shadow where it has one: the
    weights slim's evaluation restores when training kept moving averages. Which variables have a
    shadow is the trainer's choice: slim's `train_image_classifier.py` averages every model
    variable, BatchNorm's moving mean and variance included, while averaging only the trainable
    variables leaves those two without (they are averages already); a variable without a shadow
    is read as stored. A checkpoint whose network has no shadow at all is an error.
    """
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(checkpoint_path(path))
    except tf.errors.OpError as error:
        reason = error.message.splitlines()[0]
        raise ValueError(
            f"{os.fspath(path)}: not a readable TF-slim checkpoint (a prefix such as "
            f"model.ckpt-90000, a .ckpt file or a folder holding one): {reason}"
        ) from None
    network_scopes = {spec.slim_scope for spec in networks()}
    stored = reader.get_variable_to_shape_map()
    by_scope = {}
    for name in stored:
        scope, _, rest = name.partition("/")
        if scope in network_scopes and not TRAINING_STATE.search(name):
            by_scope.setdefault(scope, {})[rest] = name
    expected = get_network(architecture, key="architecture").slim_scope
    scope = expected if expected in by_scope else min(by_scope, default=None)
    description = f"TF-slim checkpoint {os.fspath(path)!r}"
    if scope != expected:
        description += f" of {scope or 'no known network'} (not {expected})"
    names = by_scope.get(scope, {})
    if use_ema:
        names = {
            short: full + SHADOW if full + SHADOW in stored else full
            for short, full in names.items()
        }
        if not any(full.endswith(SHADOW) for full in names.values()):
            raise ValueError(
                f"{os.fspath(path)}: use_ema reads ExponentialMovingAverage shadows, and this "
                f"checkpoint has none for {scope or 'any known network'}."
            )
        description += ", read from its moving averages"
    return Source(description, {short: reader.get_tensor(full) for short, full in names.items()})


def checkpoint_path(path):
    """The checkpoint inside `path` when it is a folder (slim's tarballs hold one `.ckpt` file)."""
    import tensorflow as tf

    path = os.fspath(path)
    if not os.path.isdir(path):
        return path
    latest = tf.train.latest_checkpoint(path)
    if latest:
        return latest
    found = sorted(f for f in os.listdir(path) if f.endswith((".ckpt", ".index")))
    if len(found) != 1:
        raise ValueError(f"Expected one checkpoint in the folder {path}, found {found or 'none'}.")
    return os.path.join(path, found[0].removesuffix(".index"))
