"""Legacy Keras HDF5 files (`.h5`, the format of Keras 1 and 2 and of keras.applications' weights),
read with h5py alone, and which of the two layouts we read a file has.

A weights-only file keeps its layers at the root and a whole-model file (`model.save`) under
`model_weights`, beside a `model_config` JSON that is never read here: Keras 2 marshals the Python
bytecode of `Lambda` layers into it, and deserialising the model would run that code.
"""

import itertools
import re

import h5py
import numpy as np

# The two layouts, by the source format that reads each. FaceNet's Keras-2 port names layers
# after slim's scopes, starting with slim's first convolution; keras.applications leaves most
# names to Keras, which numbers them per layer class (`conv2d`, `conv2d_1`, ...).
KERAS_FACENET, KERAS_APPLICATIONS = "keras-facenet", "keras-applications"
FACENET_FIRST_LAYER = "Conv2d_1a_3x3"
GENERIC_CONV_NAME = re.compile(r"conv2d(_\d+)?")


def h5_format(path):
    """The source format of the legacy Keras `.h5` file at `path`, told by its layer names."""
    names = _with_file(path, _layer_names)
    if FACENET_FIRST_LAYER in names:
        return KERAS_FACENET
    if any(GENERIC_CONV_NAME.fullmatch(name) for name in names):
        return KERAS_APPLICATIONS
    raise ValueError(
        f"{path}: a Keras HDF5 file in neither layout that can be read: FaceNet's Keras-2 port "
        f"names its layers as slim's scopes ({FACENET_FIRST_LAYER}, Block35_1_Conv2d_1x1, ...), "
        "keras.applications' Inception-ResNet-v2 has Keras' generic names (conv2d_1, "
        f"batch_normalization_1, ...); this file's layers begin {', '.join(names[:5])}."
    )


def read_layers(path):
    """Each layer that holds weights: layer name -> {weight name: array}, both in the file's
    order (the order Keras assigns them in)."""

    def read(group):
        layers = {}
        for name in _layer_names(group):
            weights = {
                w: np.asarray(group[name][w]) for w in _attribute(group[name], "weight_names")
            }
            if weights:
                layers[name] = weights
        return layers

    return _with_file(path, read)


def _with_file(path, read):
    """`read(group)` on the group holding the layers of the HDF5 file at `path`."""
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path}: not a readable HDF5 (.h5) file ({error}).") from None
    with file:
        return read(file["model_weights"] if "model_weights" in file else file)


def _layer_names(group):
    names = _attribute(group, "layer_names")
    if not names:
        raise ValueError(
            f"{group.file.filename} is not a legacy Keras HDF5 weights file (no `layer_names`); "
            "Keras 3 `.weights.h5` files load with `weights=path` directly."
        )
    return names


def _attribute(group, name):
    """A list attribute that Keras writes whole, or in chunks `name0`, `name1`, ... where it
    exceeds HDF5's 64 KiB object header."""
    if name in group.attrs:
        return _strings(group.attrs[name])
    chunks = itertools.takewhile(lambda i: f"{name}{i}" in group.attrs, itertools.count())
    return [value for i in chunks for value in _strings(group.attrs[f"{name}{i}"])]


def _strings(values):
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]
