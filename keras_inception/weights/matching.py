"""The strict matching every converter ends in: source tensors by slim name -> model weights.

Every converter translates its source into one currency: a dict from slim variable names without
the network prefix (`Mixed_6a/Branch_0/Conv2d_1a_3x3/weights`) to arrays already in Keras layout.
Our layer names are slim scopes with `/` written as `__`, so the model side needs no table, and
this module is the only place that decides whether a source fits a model.
"""

import dataclasses

import numpy as np

from keras_inception.models.blocks import CLASSIFIER_SCOPES, HEAD_SCOPES, slim_scope

# Keras variable names -> slim's.
SLIM_VARIABLE_NAMES = {"kernel": "weights", "bias": "biases"}
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


@dataclasses.dataclass(frozen=True)
class TransferReport:
    """What `transfer_weights` did: the source, how many tensors it set, and the heads (slim
    scopes) that came from the source, that stayed freshly initialised (and why), and that the
    source had but the model has not."""

    source: str
    loaded: int
    loaded_heads: tuple[str, ...]
    new_heads: dict
    unused_heads: tuple[str, ...]

    def summary(self):
        new = "; ".join(f"{head} new ({why})" for head, why in self.new_heads.items())
        return (
            f"Loaded {self.loaded} tensors from {self.source}"
            + (f"; heads loaded: {', '.join(self.loaded_heads)}" if self.loaded_heads else "")
            + (f"; {new}" if new else "")
            + "."
        )


def _scope_of(name):
    return name.split("/", 1)[0]


def slim_name(layer, variable):
    return f"{slim_scope(layer.name)}/{SLIM_VARIABLE_NAMES.get(variable.name, variable.name)}"


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
    _assign(model, targets, _fitted_tensors(source, targets), source.description)
    return model


def transfer_weights(model, source):
    """Fine-tuning's load, as slim's `--checkpoint_exclude_scopes`: the backbone strictly, as
    `assign_weights`; each head of the model (classifier, auxiliary classifier, embedding) from
    the source when the source has it with every shape the model's, and otherwise left as
    initialised (a new class count, say). Returns a `TransferReport`."""
    targets = model_variables(model)
    tensors = _fitted_tensors(source, targets)
    model_heads = sorted({_scope_of(name) for name in targets} & set(HEAD_SCOPES))
    new_heads = {}
    for head in model_heads:
        names = [name for name in targets if _scope_of(name) == head]
        if not any(_scope_of(name) == head for name in tensors):
            new_heads[head] = "not in the source"
        elif any(
            name not in tensors or _shape(tensors[name]) != _shape(targets[name]) for name in names
        ):
            shapes = ", ".join(
                f"{name}: source {_shape(tensors[name]) if name in tensors else 'none'}, "
                f"model {_shape(targets[name])}"
                for name in names
                if name not in tensors or _shape(tensors[name]) != _shape(targets[name])
            )
            new_heads[head] = f"shapes differ: {shapes}"
    kept = {name: v for name, v in targets.items() if _scope_of(name) not in new_heads}
    tensors = {name: a for name, a in tensors.items() if _scope_of(name) not in new_heads}
    _assign(model, kept, tensors, source.description)
    return TransferReport(
        source=source.description,
        loaded=len(kept),
        loaded_heads=tuple(head for head in model_heads if head not in new_heads),
        new_heads=new_heads,
        unused_heads=tuple(
            sorted(
                {_scope_of(name) for name in source.tensors} & set(HEAD_SCOPES) - set(model_heads)
            )
        ),
    )


def _shape(array):
    return tuple(array.shape)


def _fitted_tensors(source, targets):
    """The source's tensors made to fit the model's conventions: unit BN gammas dropped (any
    other gamma kept, for the mismatch listing), heads the model leaves out dropped, slim's
    background class dropped for a 1000-class model."""
    tensors = _drop_unit_gammas(source.tensors)
    tensors = _skip_absent_heads(tensors, targets)
    return _drop_background_class(tensors, targets)


def _assign(model, targets, tensors, description):
    """Assign `targets` (slim name -> variable) from `tensors`, all or nothing."""
    scaled = sorted(name for name in tensors if name.endswith(GAMMA))
    missing = sorted(targets.keys() - tensors.keys())
    unexpected = sorted(tensors.keys() - targets.keys() - set(scaled))
    wrong_shapes = sorted(
        f"{name}: source {_shape(tensors[name])}, model {_shape(targets[name])}"
        for name in targets.keys() & tensors.keys()
        if _shape(tensors[name]) != _shape(targets[name])
    )
    if missing or unexpected or wrong_shapes or scaled:
        raise WeightsMismatchError(
            _mismatch_message(description, model.name, missing, unexpected, wrong_shapes, scaled)
        )
    for name, variable in targets.items():
        variable.assign(tensors[name].astype(variable.dtype))


def _drop_unit_gammas(tensors):
    """Drop BN gammas that are all ones (our BN has no scale, and a ReLU follows it); any other
    gamma stays, and `_assign` lists it as one this model cannot hold."""
    return {
        name: array
        for name, array in tensors.items()
        if not (name.endswith(GAMMA) and np.all(array == 1))
    }


def _skip_absent_heads(tensors, targets):
    absent = set(HEAD_SCOPES) - {_scope_of(name) for name in targets}
    return {name: a for name, a in tensors.items() if _scope_of(name) not in absent}


def _drop_background_class(tensors, targets):
    """Turn a 1001-class slim classifier into the 1000 ImageNet classes when the model has 1000,
    by dropping class 0 (background); a model built with classes=1001 keeps it."""
    adapted = dict(tensors)
    for name, variable in targets.items():
        if _scope_of(name) not in CLASSIFIER_SCOPES or name not in tensors:
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
