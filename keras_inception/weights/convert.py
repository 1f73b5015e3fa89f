"""One entry point over the readers: read any supported source, build the model it describes and
save that model's weights as a Keras `.weights.h5` file."""

import os
from collections.abc import Mapping

from keras_inception.models import get_network
from keras_inception.weights.keras_applications import read_keras_applications
from keras_inception.weights.keras_facenet import read_keras_facenet
from keras_inception.weights.legacy_h5 import KERAS_APPLICATIONS, KERAS_FACENET, h5_format
from keras_inception.weights.matching import BACKGROUND_CLASSES, assign_weights
from keras_inception.weights.pytorch import read_state_dict
from keras_inception.weights.slim import read_slim_checkpoint

READERS = {
    "slim": read_slim_checkpoint,
    "pytorch": read_state_dict,
    KERAS_APPLICATIONS: read_keras_applications,
    KERAS_FACENET: read_keras_facenet,
}
SOURCE_FORMATS = tuple(READERS)
PYTORCH_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
H5_SUFFIXES = (".h5", ".hdf5")


def read_source(source, architecture, source_format=None, use_ema=False):
    """Read `source` into a `Source` for `architecture`.

    `source_format`: "slim" (a TF-slim checkpoint), "pytorch" (a timm state dict for Inception-v4
    and Inception-ResNet-v2, a facenet-pytorch one for Inception-ResNet-v1), "keras-applications"
    (Inception-ResNet-v2 `.h5`) or "keras-facenet" (Keras-2 FaceNet `.h5`); by default guessed:
    dicts and .safetensors/.pth/.pt/.bin are PyTorch, an .h5/.hdf5 file is either Keras kind as
    its layer names tell, anything else slim. `use_ema` reads a slim checkpoint's moving averages
    (see `read_slim_checkpoint`).
    """
    get_network(architecture, key="architecture")
    source_format = source_format or guess_format(source)
    if source_format not in READERS:
        raise ValueError(f"source_format must be one of {SOURCE_FORMATS}, got {source_format!r}.")
    if not use_ema:
        return READERS[source_format](source, architecture)
    if source_format != "slim":
        raise ValueError(
            f"use_ema reads the moving averages of TF-slim checkpoints; this source is read as "
            f"{source_format}."
        )
    return read_slim_checkpoint(source, architecture, use_ema=True)


def guess_format(source):
    if isinstance(source, Mapping):
        return "pytorch"
    path = os.fspath(source)
    if path.endswith(PYTORCH_SUFFIXES):
        return "pytorch"
    if path.endswith(H5_SUFFIXES):
        return h5_format(path)
    return "slim"


def source_model(source, architecture, classes=None, aux_logits=False):
    """Build the model that `source` describes: its top (classifier or FaceNet embedding, or none),
    its class count (slim's 1001 become 1000 unless `classes=1001`) and, with `aux_logits`, the
    auxiliary head."""
    tensors = source.tensors
    config = {"weights": None, "aux_logits": aux_logits}
    if "Bottleneck/weights" in tensors:
        config["embedding_size"] = tensors["Bottleneck/weights"].shape[-1]
    elif "Logits/Logits/biases" in tensors:
        found = tensors["Logits/Logits/biases"].shape[-1]
        config["classes"] = classes or (found - 1 if found == BACKGROUND_CLASSES else found)
    else:
        config["include_top"] = False
    return get_network(architecture).factory(**config)


def convert(
    source,
    architecture,
    output,
    *,
    source_format=None,
    classes=None,
    aux_logits=False,
    use_ema=False,
):
    """Convert `source` to a Keras weights file `output` (`.weights.h5`) and return the model
    (`use_ema`: see `read_slim_checkpoint`).

    The file loads into the factory built as the source describes, for example
    `InceptionV4(weights=output)` for slim's ImageNet checkpoint, or
    `InceptionResNetV1(weights=output, embedding_size=512)` for FaceNet's.
    """
    if not os.fspath(output).endswith(".weights.h5"):
        raise ValueError(
            f"The output must be a Keras weights file ending in .weights.h5, got {output}."
        )
    source = read_source(source, architecture, source_format, use_ema=use_ema)
    model = source_model(source, architecture, classes=classes, aux_logits=aux_logits)
    assign_weights(model, source)
    save_weights(model, output)
    return model


def save_weights(model, path):
    """`model.save_weights(path)` through a temporary file, so that an interrupted write never
    replaces a good file (or leaves a broken cache) at `path`."""
    path = os.fspath(path)
    partial = path.removesuffix(".weights.h5") + ".partial.weights.h5"
    model.save_weights(partial)
    os.replace(partial, path)
