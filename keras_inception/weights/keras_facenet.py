"""Keras-2 FaceNet `.h5` files: nyoki-mtl/keras-facenet's `facenet_keras.h5` (Keras 2.1, 128-d
embeddings) and weights-only files in its layout (the 512-d ports).

That port converted FaceNet's slim checkpoints by renaming: its layer names are slim's scopes
joined by `_` with the `Repeat` scopes dropped (`Repeat_1/block17_3/Branch_1/Conv2d_0b_1x7` is
`Block17_3_Branch_1_Conv2d_0b_1x7`, its BatchNorm `..._BatchNorm`), and slim's final unscaled
`Block8` is `Block8_6`, after the five scaled ones. Kernels are already in Keras layout, BatchNorm
has no gamma, and only the residual blocks' `Conv2d_1x1` has a bias. The residual scaling lives in
`Lambda` layers of the model config, which is never read (see `legacy_h5`): layers are matched by
name alone.
"""

import os
import re

from keras_inception.models import get_network
from keras_inception.weights.legacy_h5 import read_layers
from keras_inception.weights.matching import SLIM_VARIABLE_NAMES, Source

ARCHITECTURE = "inception_resnet_v1"
# `Block35_2_Branch_1_Conv2d_0b_3x3_BatchNorm`, `Mixed_6a_Branch_0_Conv2d_1a_3x3`, `Bottleneck`...
LAYER_NAME = re.compile(
    r"(?:(?P<block>Block35|Block17|Block8)_(?P<index>\d+)_|(?P<mixed>Mixed_\d[a-z])_)?"
    r"(?:(?P<branch>Branch_\d+)_)?"
    r"(?P<layer>Conv2d_(?:\d[a-z]_)?\d+x\d+|Bottleneck)"
    r"(?P<batch_norm>_BatchNorm)?"
)
REPEAT_SCOPES = {"Block35": "Repeat", "Block17": "Repeat_1", "Block8": "Repeat_2"}
FINAL_BLOCK = "Block8_6"


def read_keras_facenet(path, architecture=ARCHITECTURE):
    """Read a Keras-2 FaceNet `.h5` file (whole model or weights only) into tensors by slim name;
    the embedding size is the file's. Layers outside the layout keep their Keras-2 names, so that
    `assign_weights` lists them as unexpected."""
    path = os.fspath(path)
    description = f"Keras-2 FaceNet file {path!r}"
    if architecture != ARCHITECTURE:
        raise ValueError(
            f"{description} (layers named as slim's scopes: Conv2d_1a_3x3, Block35_1_...) holds "
            f"FaceNet's {get_network(ARCHITECTURE).title}, not {get_network(architecture).title}."
        )
    tensors = {}
    for layer, weights in read_layers(path).items():
        scope = slim_scope(layer)
        for weight, array in weights.items():
            # Keras 2 names a weight `<layer>/kernel:0`.
            variable = weight.rpartition("/")[2].removesuffix(":0")
            tensors[f"{scope}/{SLIM_VARIABLE_NAMES.get(variable, variable)}"] = array
    return Source(description, tensors)


def slim_scope(layer_name):
    """`Block17_3_Branch_1_Conv2d_0b_1x7` -> `Repeat_1/block17_3/Branch_1/Conv2d_0b_1x7`; a name
    outside the layout is returned as it is."""
    match = LAYER_NAME.fullmatch(layer_name)
    if not match:
        return layer_name
    block, index, mixed, branch, layer, batch_norm = match.groups()
    if block and f"{block}_{index}" == FINAL_BLOCK:
        block = "Block8"
    elif block:
        block = f"{REPEAT_SCOPES[block]}/{block.lower()}_{index}"
    parts = (block, mixed, branch, layer, batch_norm and "BatchNorm")
    return "/".join(part for part in parts if part)
