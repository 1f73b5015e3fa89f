"""The strict matching every converter ends in: source tensors by slim name -> model weights.

Every converter translates its source into one currency: a dict from slim variable names without
the network prefix (`Mixed_6a/Branch_0/Conv2d_1a_3x3/weights`) to arrays already in Keras layout.
Our layer names are slim scopes with `/` written as `__`, so the model side needs no table, and
this module is the only place that decides whether a source fits a model.
"""

import dataclasses

import numpy as np

from keras_inception.models.blocks import SCOPE_SEPARATOR

# Keras variable names -> slim's.
SLIM_VARIABLE_NAMES = {"kernel": "weights", "bias": "biases"}
# Heads a source may carry that a model may leave out (include_top=False, no aux head, FaceNet's
# embedding head): their tensors are used when the model has the head and skipped otherwise.
HEAD_SCOPES = ("Logits", "AuxLogits", "Bottleneck")
CLASSIFIER_SCOPES = ("Logits", "AuxLogits")
# Slim's ImageNet classifiers have an extra class 0, "background", that no dataset uses.
BACKGROUND_CLASSES = 1001
GAMMA = "BatchNorm/gamma"


@dataclasses.dataclass(frozen=True)
class Source:
    """Tensors read from one source, by slim name in Keras layout, and what to call the source in
    messages."""

    description: str
    tensors: dict


class WeightsMismatchError(ValueError):
    """A source does not fit a model; the message lists every missing, unexpected and wrongly
    shaped tensor so one reading shows what is wrong (for example, a checkpoint of another
    network)."""


def slim_name(layer, variable):
    scope = layer.name.replace(SCOPE_SEPARATOR, "/")
    return f"{scope}/{SLIM_VARIABLE_NAMES.get(variable.name, variable.name)}"


def model_variables(model):
    """The model's weights by slim name."""
    return {slim_name(layer, v): v for layer in model.layers for v in layer.weights}


def model_tensors(model):
    """The model's weights by slim name, as arrays: the converters' currency, read back."""
    return {name: np.asarray(v.numpy()) for name, v in model_variables(model).items()}


def assign_weights(model, source):
    """Set every weight of `model` from a `Source`, or raise one `WeightsMismatchError` that
    lists every problem. Nothing is assigned unless everything fits, so a failed load leaves the
    model as it was."""
    targets = model_variables(model)
    tensors, scaled = _drop_unit_gammas(source.tensors)
    tensors = _skip_absent_heads(tensors, targets)
    tensors = _drop_background_class(tensors, targets)
    missing = sorted(targets.keys() - tensors.keys())
    unexpected = sorted(tensors.keys() - targets.keys())
    wrong_shapes = sorted(
        f"{name}: source {tuple(tensors[name].shape)}, model {tuple(targets[name].shape)}"
        for name in targets.keys() & tensors.keys()
        if tuple(tensors[name].shape) != tuple(targets[name].shape)
    )
    if missing or unexpected or wrong_shapes or scaled:
        raise WeightsMismatchError(
            _mismatch_message(
                source.description, model.name, missing, unexpected, wrong_shapes, scaled
            )
        )
    for name, variable in targets.items():
        variable.assign(tensors[name].astype(variable.dtype))
    return model


def _drop_unit_gammas(tensors):
    """Drop BN gammas that are all ones (our BN has no scale, and a ReLU follows it); return the
    names of any other gamma, which this model cannot hold."""
    kept, scaled = {}, []
    for name, array in tensors.items():
        if name.endswith(GAMMA):
            if not np.all(array == 1):
                scaled.append(name)
            continue
        kept[name] = array
    return kept, sorted(scaled)


def _skip_absent_heads(tensors, targets):
    present = {name.split("/", 1)[0] for name in targets}
    absent = set(HEAD_SCOPES) - present
    return {name: a for name, a in tensors.items() if name.split("/", 1)[0] not in absent}


def _drop_background_class(tensors, targets):
    """Turn a 1001-class slim classifier into the 1000 ImageNet classes when the model has 1000,
    by dropping class 0 (background); a model built with classes=1001 keeps it."""
    adapted = dict(tensors)
    for name, variable in targets.items():
        if name.split("/", 1)[0] not in CLASSIFIER_SCOPES or name not in tensors:
            continue
        array = tensors[name]
        if array.shape[-1] == BACKGROUND_CLASSES and variable.shape[-1] == BACKGROUND_CLASSES - 1:
            adapted[name] = array[..., 1:]
    return adapted


def _mismatch_message(source, model_name, missing, unexpected, wrong_shapes, scaled):
    sections = [
        ("missing from the source", missing),
        ("not in the model (unexpected)", unexpected),
        ("with the wrong shape", wrong_shapes),
        ("BatchNorm gamma not all ones (this model's BatchNorm has no scale)", scaled),
    ]
    lines = [f"{source} does not fit the model {model_name!r}; nothing was loaded."]
    for title, names in sections:
        if names:
            lines.append(f"{len(names)} {title}:")
            lines.extend(f"  {name}" for name in names)
    return "\n".join(lines)
