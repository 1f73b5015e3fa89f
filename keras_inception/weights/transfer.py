"""The weights a training run starts from (`[model] weights`): published weights by name, a Keras
weights file, one of our saved models or run folders, or any file `convert` reads, all read into
the converters' one currency and loaded by `transfer_weights` (backbone strictly, heads where
they fit).
"""

import json
from collections import Counter
from pathlib import Path

import h5py
import keras

from keras_inception.errors import ConfigError
from keras_inception.models import get_network, networks
from keras_inception.models.application import MIN_AUX_INPUT_SIZE, MIN_SIZE
from keras_inception.run_folder import RunFolder, write_text
from keras_inception.weights.convert import read_source
from keras_inception.weights.matching import (
    Source,
    WeightsMismatchError,
    model_tensors,
    transfer_weights,
)
from keras_inception.weights.pretrained import read_pretrained

RANDOM = "none"  # `weights = "none"`: random initialisation, as leaving the key out
KERAS_WEIGHTS_SUFFIX = ".weights.h5"


def load_initial_weights(model, weights, network, depths=None):
    """Load `weights` (see `read_initial_weights`) into `model`, a `network` model, as
    `transfer_weights` does; return its `TransferReport`."""
    return transfer_weights(model, read_initial_weights(weights, network, depths))


def read_initial_weights(weights, network, depths=None):
    """Read `weights` for a `network` model into a `Source`.

    `weights` is the name of the network's published weights (`"imagenet"`), a Keras
    `.weights.h5` file of this network, a `.keras` model, a run folder (its final model), or a
    TF-slim checkpoint, timm/facenet-pytorch state dict or keras.applications `.h5`. A
    `.weights.h5` file holds no configuration: it is read as saved from a model of `depths` (the
    network's own by default) or of the network's default depths.
    """
    spec = get_network(network)
    if weights in spec.weights:
        return read_pretrained(spec, weights)
    path = Path(weights)
    if not path.exists():
        raise FileNotFoundError(
            f"model.weights: {weights!r} is neither a file or folder nor one of {network}'s "
            f'published weights ({", ".join(spec.weights) or "none"}); "none" is a random '
            "initialisation."
        )
    if path.is_dir() and RunFolder(path).recipe_file.exists():
        path = _final_model(RunFolder(path))
    if path.name.endswith(".keras"):
        return _read_saved_model(path)
    if path.name.endswith(KERAS_WEIGHTS_SUFFIX):
        return _read_keras_weights(path, spec, depths)
    return read_source(path, network)


def write_report(path, report):
    """Record a `TransferReport` as JSON, for the run folder."""
    record = {
        "source": report.source,
        "loaded_tensors": report.loaded,
        "loaded_heads": list(report.loaded_heads),
        "new_heads": report.new_heads,
        "unused_source_heads": list(report.unused_heads),
    }
    write_text(path, json.dumps(record, indent=2) + "\n")


def _final_model(run):
    if not run.finished:
        checkpoints = sorted(run.checkpoints_dir.glob("epoch_*.keras"))
        hint = f" its newest checkpoint is {checkpoints[-1]}" if checkpoints else ""
        raise ValueError(
            f"model.weights: the run in {run.path} has not finished, so it has no final model;"
            f"{hint or ' it has no checkpoint either'}."
        )
    return run.model_file


def _read_saved_model(path):
    try:
        model = keras.saving.load_model(path)
    except Exception as error:  # Keras reports a damaged zip as anything from OSError up
        raise ValueError(
            f"model.weights: cannot read {path}: not a readable .keras model "
            f"({type(error).__name__})."
        ) from None
    return Source(str(path), model_tensors(model))


def _read_keras_weights(path, spec, depths):
    """A `.weights.h5` file names layers by class and position, not by name, so it loads only
    into a model of its own configuration. Find it: the run's depths before the networks' own,
    this network before the others (so that another network's file gets the strict matcher's
    listing), a backbone whose tensors the file holds before the heads on it; load the file
    there (Keras refuses layers that do not fit) and read the tensors back by name."""
    try:
        with h5py.File(path, "r") as file:
            shapes = _weight_shapes(file)
    except OSError as error:
        raise ValueError(f"model.weights: cannot read {path}: {error}") from None
    candidates = [spec, *(other for other in networks() if other.name != spec.name)]
    heads = _heads(shapes)
    for depths_of in (lambda network: depths or network.depths, lambda network: network.depths):
        for candidate in candidates:
            backbone = _build(candidate, depths_of(candidate), {"include_top": False})
            if backbone is None or Counter(_shapes(backbone)) - Counter(shapes.values()):
                continue
            for head in heads:
                model = _build(candidate, depths_of(candidate), head)
                if model is None or sorted(_shapes(model)) != sorted(shapes.values()):
                    continue
                try:
                    model.load_weights(path)
                except ValueError:
                    continue
                return Source(f"{path} ({candidate.name} weights)", model_tensors(model))
    raise WeightsMismatchError(
        f"model.weights: {path} holds {len(shapes)} tensors that fit no configuration of "
        f"{', '.join(other.name for other in candidates)} (depths {tuple(depths or spec.depths)} "
        "or the default ones; with or without each head). Save weights with their model "
        "(`.keras`) to use them across configurations."
    )


def _weight_shapes(file):
    shapes = {}
    file.visititems(
        lambda name, item: (
            shapes.__setitem__(name, tuple(item.shape))
            if isinstance(item, h5py.Dataset) and name.startswith("layers/")
            else None
        )
    )
    return shapes


def _heads(shapes):
    """The heads a file may hold: none, or of the size of its largest dense layer's output, a
    classifier (with or without the auxiliary one) or FaceNet's embedding."""
    denses = [shape for name, shape in shapes.items() if "/dense" in name and len(shape) == 2]
    heads = [{"include_top": False}]
    if denses:
        outputs = max(denses)[1]
        heads += [
            {"classes": outputs},
            {"classes": outputs, "aux_logits": True},
            {"embedding_size": outputs},
        ]
    return heads


def _build(spec, depths, head):
    """The `spec` network with `depths` and `head`, at the smallest input that takes the head;
    None for depths the network refuses."""
    side = MIN_AUX_INPUT_SIZE if head.get("aux_logits") else MIN_SIZE
    try:
        return spec.factory(weights=None, input_shape=(side, side, 3), depths=depths, **head)
    except ConfigError:
        return None


def _shapes(model):
    return [tuple(variable.shape) for variable in model.weights]


def is_random(weights):
    """Whether `[model] weights` asks for random initialisation."""
    return weights is None or weights == RANDOM
