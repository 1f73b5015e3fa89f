"""Fine-tuning's two ideas: which layers train (slim's `--trainable_scopes`, Keras's
`layer.trainable`), and the phases a run trains in (the new head alone first, then more).

Freezing is Keras's documented semantics: a frozen layer's weights do not change, and a frozen
BatchNormalization runs in inference mode (its moving statistics are used, never updated), which
is what keeps a pretrained backbone intact while a new head learns.
"""

from dataclasses import dataclass

from keras_inception.errors import ConfigError
from keras_inception.models import get_network
from keras_inception.models.blocks import is_head, slim_scope


@dataclass(frozen=True)
class Phase:
    """Epochs [start_epoch, end_epoch) of a run, training `trainable` (a `FinetuneConfig`
    value) from `learning_rate` with a fresh optimizer."""

    name: str
    start_epoch: int
    end_epoch: int
    trainable: str | tuple[str, ...]
    learning_rate: float

    @property
    def epochs(self):
        return self.end_epoch - self.start_epoch


def training_phases(recipe):
    """The recipe's phases: with `finetune.head_epochs`, the head alone at
    `finetune.head_learning_rate`, then `finetune.trainable` at the optimizer's rate; else one."""
    finetune, epochs = recipe.finetune, recipe.training.epochs
    rate = recipe.optimizer.learning_rate
    main = Phase("main", finetune.head_epochs, epochs, finetune.trainable, rate)
    if not finetune.head_epochs:
        return [main]
    head_rate = finetune.head_learning_rate or rate
    return [Phase("head", 0, finetune.head_epochs, "head", head_rate), main]


def set_trainable(model, trainable, network=None):
    """Make exactly the layers `trainable` selects trainable and freeze the others; return the
    names of the selected layers that hold weights.

    `trainable` is "all", "head", or slim scope prefixes, matched as slim matches
    `--trainable_scopes` (a plain prefix of the layer's slim scope, so "Mixed_6" takes
    Mixed_6a, 6b, ...); the `network`'s slim scope may lead each prefix. A prefix that selects
    nothing is an error naming it. Compile the model again afterwards, as Keras requires.
    """
    selected = [layer for layer in model.layers if _selects(trainable, layer.name, network)]
    if not isinstance(trainable, str):
        for prefix in trainable:
            if not any(_matches(prefix, layer.name, network) for layer in model.layers):
                scopes = sorted({slim_scope(layer.name).split("/")[0] for layer in model.layers})
                raise ConfigError(
                    f"finetune.trainable: {prefix!r} names no layer of {model.name}; its "
                    f"top-level scopes are {', '.join(scopes)}.",
                    key="finetune.trainable",
                )
    if trainable == "head" and not any(layer.weights for layer in selected):
        raise ConfigError(
            f"finetune.trainable: {model.name} has no head to train (built without its top).",
            key="finetune.trainable",
        )
    model.trainable = True
    chosen = {layer.name for layer in selected}
    for layer in model.layers:
        layer.trainable = layer.name in chosen
    return [layer.name for layer in selected if layer.weights]


def _selects(trainable, layer_name, network):
    if trainable == "all":
        return True
    if trainable == "head":
        return is_head(layer_name)
    return any(_matches(prefix, layer_name, network) for prefix in trainable)


def _matches(prefix, layer_name, network):
    if network is not None:
        prefix = prefix.removeprefix(get_network(network).slim_scope + "/")
    return slim_scope(layer_name).startswith(prefix.rstrip("/"))
