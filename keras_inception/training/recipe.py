"""Recipes: typed descriptions of a whole training run, read from TOML files.

A recipe file has a few top-level keys (`description`, `seed`, `output`) and one table per
section below. Every key is checked on load against the dataclass field it fills: an unknown key,
a value of the wrong type or an impossible value is a `RecipeError` naming the key and the file.
The `[model]` section is checked by the network's own factory checks, so a recipe is refused for
exactly what the factory would refuse, before any data is read. Keys left out take the defaults
written here, which are the paper's (see docs/training.md).
"""

import dataclasses
import importlib.resources
import json
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from keras_inception.data import DataConfig
from keras_inception.errors import ConfigError, RecipeError, check, coerce_fields
from keras_inception.models import get_network
from keras_inception.models.application import check_arguments
from keras_inception.training.distribution import (
    ClusterConfig,
    check_distribution,
    check_lr_scaling,
)

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


def _in_unit_interval(value, *, open_low=False, open_high=False):
    low_ok = value > 0 if open_low else value >= 0
    high_ok = value < 1 if open_high else value <= 1
    return low_ok and high_ok


@dataclass(frozen=True)
class ModelConfig:
    """The network and its hyperparameters. `None` keeps the network's own default.

    `weights` is what training starts from: left out or "none" for a random initialisation,
    else published weights by name ("imagenet"), a `.weights.h5` file, a `.keras` model, a run
    folder, or any file `keras-inception convert` reads (see weights/transfer.py). A path may
    name what another run will make, so it is read (and checked) when training starts.
    """

    network: str = "inception_resnet_v2"
    input_size: int = 299
    residual_scale: float | tuple[float, float, float] | None = None
    depths: tuple[int, int, int] | None = None
    dropout_rate: float = 0.2
    aux_logits: bool = False
    aux_loss_weight: float = 0.4
    embedding_size: int | None = None
    weights: str | None = None

    def __post_init__(self):
        coerce_fields(self, "model")
        check(self.aux_loss_weight >= 0, "model.aux_loss_weight", ">= 0", self.aux_loss_weight)
        try:
            check_arguments(get_network(self.network), **self.factory_arguments(classes=1))
        except ConfigError as error:
            key = f"model.{error.key}"
            raise ConfigError(f"{key}: {error}", key=key) from error

    def factory_arguments(self, classes):
        """The arguments of the network's factory for this section and a head of `classes`."""
        arguments = dict(
            input_shape=(self.input_size, self.input_size, 3),
            classes=classes,
            dropout_rate=self.dropout_rate,
            aux_logits=self.aux_logits,
            depths=self.depths,
            residual_scale=self.residual_scale,
            embedding_size=self.embedding_size,
        )
        return {name: value for name, value in arguments.items() if value is not None}


@dataclass(frozen=True)
class TrainingConfig:
    """How long and how the loss is formed. `steps_per_epoch` left out means one pass over the
    training data; `precision` is a `keras.mixed_precision` policy name, or `auto` for the fastest
    one that keeps accuracy on the machine at hand (see precision.py). `batch_size` is per
    replica; `distribution` and `lr_scaling` are explained in keras_inception/training/distribution.py."""

    batch_size: int = 32
    epochs: int = 100
    steps_per_epoch: int | None = None
    label_smoothing: float = 0.1
    weight_decay: float = 4e-5
    precision: str = "auto"
    distribution: str = "auto"
    lr_scaling: str = "linear"
    deterministic: bool = False

    def __post_init__(self):
        coerce_fields(self, "training")
        check(self.batch_size >= 1, "training.batch_size", "at least 1", self.batch_size)
        check(self.epochs >= 1, "training.epochs", "at least 1", self.epochs)
        check(
            self.steps_per_epoch is None or self.steps_per_epoch >= 1,
            "training.steps_per_epoch",
            "at least 1",
            self.steps_per_epoch,
        )
        check(
            _in_unit_interval(self.label_smoothing, open_high=True),
            "training.label_smoothing",
            "in [0, 1)",
            self.label_smoothing,
        )
        check(self.weight_decay >= 0, "training.weight_decay", ">= 0", self.weight_decay)
        check(
            self.precision in PRECISIONS,
            "training.precision",
            f"one of {PRECISIONS}",
            self.precision,
        )
        check_distribution(self.distribution)
        check_lr_scaling(self.lr_scaling)


@dataclass(frozen=True)
class OptimizerConfig:
    """The optimizer `name` names: `rmsprop` as the paper ran it, `sgd` with `momentum`
    (Nesterov's if `nesterov`) or `adamw`, Keras's AdamW with its decoupled weight decay
    `decoupled_weight_decay` (on top of `training.weight_decay`'s loss penalty). `rho` is
    RMSProp's alone; `epsilon` left out means the paper's 1.0 for rmsprop and Keras's default for
    adamw (SGD has none). `global_clipnorm` left out means no clipping; `ema_momentum` left out
    means no weight averaging (slim's, see `keras_internals.SlimWeightAverage`)."""

    NAMES = ("rmsprop", "sgd", "adamw")

    name: str = "rmsprop"
    learning_rate: float = 0.045
    rho: float = 0.9
    momentum: float = 0.9
    epsilon: float | None = None
    global_clipnorm: float | None = 2.0
    ema_momentum: float | None = 0.9999
    nesterov: bool = False
    decoupled_weight_decay: float = 0.004

    def __post_init__(self):
        coerce_fields(self, "optimizer")
        check(self.name in self.NAMES, "optimizer.name", f"one of {self.NAMES}", self.name)
        check(self.learning_rate > 0, "optimizer.learning_rate", "> 0", self.learning_rate)
        check(_in_unit_interval(self.rho, open_high=True), "optimizer.rho", "in [0, 1)", self.rho)
        check(
            _in_unit_interval(self.momentum, open_high=True),
            "optimizer.momentum",
            "in [0, 1)",
            self.momentum,
        )
        check(
            self.epsilon is None or self.epsilon > 0,
            "optimizer.epsilon",
            "> 0 (leave the key out for the optimizer's default)",
            self.epsilon,
        )
        check(
            self.global_clipnorm is None or self.global_clipnorm > 0,
            "optimizer.global_clipnorm",
            "> 0 (leave the key out for no clipping)",
            self.global_clipnorm,
        )
        check(
            self.ema_momentum is None or _in_unit_interval(self.ema_momentum, open_high=True),
            "optimizer.ema_momentum",
            "in [0, 1) (leave the key out for no averaging)",
            self.ema_momentum,
        )
        check(
            self.name == "sgd" or not self.nesterov,
            "optimizer.nesterov",
            "false unless optimizer.name is 'sgd'",
            self.nesterov,
        )
        check(
            self.decoupled_weight_decay >= 0,
            "optimizer.decoupled_weight_decay",
            ">= 0",
            self.decoupled_weight_decay,
        )


@dataclass(frozen=True)
class ScheduleConfig:
    """The learning rate over training, as `name` says: `exponential` (the paper's) times
    `decay_rate` every `decay_epochs` (in steps if `staircase`); `cosine` rises linearly from 0
    over `warmup_epochs`, then falls along a cosine to `alpha` times the rate at the end of
    training. Both start afresh with each optimizer (each training phase)."""

    NAMES = ("exponential", "cosine")

    name: str = "exponential"
    decay_rate: float = 0.94
    decay_epochs: float = 2.0
    staircase: bool = True
    warmup_epochs: float = 0.0
    alpha: float = 0.0

    def __post_init__(self):
        coerce_fields(self, "schedule")
        check(self.name in self.NAMES, "schedule.name", f"one of {self.NAMES}", self.name)
        check(0 < self.decay_rate <= 1, "schedule.decay_rate", "in (0, 1]", self.decay_rate)
        check(self.decay_epochs > 0, "schedule.decay_epochs", "> 0", self.decay_epochs)
        check(self.warmup_epochs >= 0, "schedule.warmup_epochs", ">= 0", self.warmup_epochs)
        check(_in_unit_interval(self.alpha), "schedule.alpha", "in [0, 1]", self.alpha)
        for key in ("warmup_epochs", "alpha"):  # the cosine's alone: refused where ignored
            value = getattr(self, key)
            check(
                self.name == "cosine" or not value,
                f"schedule.{key}",
                "0 unless schedule.name is 'cosine'",
                value,
            )

    def check_length(self, epochs):
        """Refuse a warm-up that does not end within a training (or phase) of `epochs` epochs."""
        check(
            self.warmup_epochs < epochs,
            "schedule.warmup_epochs",
            f"less than the {epochs} epochs the schedule runs over",
            self.warmup_epochs,
        )


TRAINABLE_SETS = ("all", "head")


@dataclass(frozen=True)
class FinetuneConfig:
    """Which layers train, and an optional first phase that trains only the head.

    `trainable`: "all", "head" (the classifier, auxiliary classifier and embedding scopes), or
    slim scope prefixes as slim's `--trainable_scopes` (`["Mixed_7a", "Block8", "Logits"]`, with
    or without the network's scope in front); every other layer is frozen, its BatchNormalization
    in inference mode. With `head_epochs`, the first that many of `training.epochs` train the
    head alone at `head_learning_rate` (default: the optimizer's rate) with a fresh optimizer;
    the rest train `trainable` at the recipe's rate and schedule, which start again there.
    """

    trainable: str | tuple[str, ...] = "all"
    head_epochs: int = 0
    head_learning_rate: float | None = None

    def __post_init__(self):
        coerce_fields(self, "finetune")
        if isinstance(self.trainable, str):
            check(
                self.trainable in TRAINABLE_SETS,
                "finetune.trainable",
                f"one of {TRAINABLE_SETS} or a list of scope prefixes",
                self.trainable,
            )
        else:
            check(
                len(self.trainable) > 0 and all(self.trainable),
                "finetune.trainable",
                "a non-empty list of scope prefixes",
                self.trainable,
            )
        check(self.head_epochs >= 0, "finetune.head_epochs", ">= 0", self.head_epochs)
        check(
            self.head_learning_rate is None or self.head_learning_rate > 0,
            "finetune.head_learning_rate",
            "> 0",
            self.head_learning_rate,
        )


@dataclass(frozen=True)
class DetectorConfig:
    """The dead-network detector: every `check_every` steps, the fraction of exact zeros in the
    features before global pooling on a fixed probe batch of `probe_size` validation images; the
    run stops after `patience` consecutive checks at or above `threshold`."""

    check_every: int = 500
    threshold: float = 0.99
    patience: int = 3
    probe_size: int = 32

    def __post_init__(self):
        coerce_fields(self, "detector")
        check(self.check_every >= 1, "detector.check_every", "at least 1", self.check_every)
        check(
            _in_unit_interval(self.threshold, open_low=True),
            "detector.threshold",
            "in (0, 1]",
            self.threshold,
        )
        check(self.patience >= 1, "detector.patience", "at least 1", self.patience)
        check(self.probe_size >= 1, "detector.probe_size", "at least 1", self.probe_size)


@dataclass(frozen=True)
class Recipe:
    """Everything a training run needs. `output` left empty means `runs/<name>`."""

    name: str
    description: str = ""
    seed: int = 0
    output: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def __post_init__(self):
        coerce_fields(self, None)
        check(0 <= self.seed < 2**32, "seed", "an integer in [0, 2**32)", self.seed)
        check(
            self.finetune.head_epochs < self.training.epochs,
            "finetune.head_epochs",
            f"fewer than training.epochs ({self.training.epochs}), which count the head phase",
            self.finetune.head_epochs,
        )
        for phase_epochs in (
            self.finetune.head_epochs,
            self.training.epochs - self.finetune.head_epochs,
        ):
            if phase_epochs:  # each phase runs the schedule afresh
                self.schedule.check_length(phase_epochs)

    @property
    def run_dir(self):
        return Path(self.output or Path("runs") / self.name)


# --------------------------------------------------------------------------- loading


def bundled_recipes():
    """The recipes shipped with the package, as {name: path}, sorted by name."""
    folder = importlib.resources.files("keras_inception") / "recipes"
    paths = sorted(Path(path) for path in folder.iterdir() if path.name.endswith(".toml"))
    return {path.stem: path for path in paths}


def find_recipe(name_or_path):
    """The path of a recipe given as a file path or as the name of a bundled recipe."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise RecipeError(f"{path}: no such recipe file.")
        return path
    recipes = bundled_recipes()
    if name_or_path not in recipes:
        raise RecipeError(
            f"No recipe named {name_or_path!r}: give a .toml path or one of {sorted(recipes)}."
        )
    return recipes[name_or_path]


def load_recipe(name_or_path, overrides=()):
    """Read, override and check a recipe. `overrides` are `section.key=value` strings whose values
    are TOML (`0.01`, `[1, 1, 1]`, `true`, `"text"`); a value that is not TOML is taken as text."""
    path = find_recipe(name_or_path)
    try:
        table = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise RecipeError(f"{path}: not valid TOML: {error}") from error
    origins = {}
    for override in overrides:
        key, value = parse_override(override)
        _check_known(Recipe, key, f"--set {override}")
        _set_nested(table, key, value)
        origins[key] = f"--set {override}"
    return recipe_from_table(table, name=path.stem, source=str(path), origins=origins)


def parse_override(text):
    """`'optimizer.learning_rate=0.01'` -> `('optimizer.learning_rate', 0.01)`."""
    key, separator, value = text.partition("=")
    key = key.strip()
    if not separator or not key:
        raise RecipeError(f"--set {text}: expected KEY=VALUE, e.g. optimizer.learning_rate=0.01.")
    try:
        return key, tomllib.loads(f"value = {value.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        return key, value.strip()


def recipe_from_table(table, *, name, source, origins=None):
    """Build a `Recipe` from a parsed TOML table; errors name the key and where its value came
    from: `origins[key]` (an override, say) or else `source`."""
    if "name" in table:
        raise RecipeError(f"{source}: name is the file's name; remove the key.")
    return _build(Recipe, {**table, "name": name}, prefix="", source=source, origins=origins or {})


def recipe_to_toml(recipe):
    """The recipe as TOML text that `load_recipe` reads back to an equal recipe (without `name`,
    which is the file's name)."""
    top, sections = [], []
    for item in dataclasses.fields(recipe):
        value = getattr(recipe, item.name)
        if item.name == "name":
            continue
        if dataclasses.is_dataclass(value):
            lines = [
                f"{sub.name} = {_toml_value(getattr(value, sub.name))}"
                for sub in dataclasses.fields(value)
                if getattr(value, sub.name) is not None
            ] + [  # a setting on by default, turned off
                f"{sub.name} = false"
                for sub in dataclasses.fields(value)
                if getattr(value, sub.name) is None and sub.default is not None
            ]
            sections.append("\n".join([f"[{item.name}]", *lines]))
        elif value is not None:
            top.append(f"{item.name} = {_toml_value(value)}")
    return "\n\n".join(["\n".join(top), *sections]) + "\n"


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ("-" if value < 0 else "") + ("nan" if math.isnan(value) else "inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    return "[" + ", ".join(_toml_value(item) for item in value) + "]"


def _build(cls, table, *, prefix, source, origins):
    """Fill dataclass `cls` from `table`; the dataclass checks each value (`coerce_fields`)."""
    if not isinstance(table, dict):
        raise RecipeError(
            f"{source}: {prefix.rstrip('.')} must be a table ([section]), got {table!r}."
        )
    hints = typing.get_type_hints(cls)
    names = [item.name for item in dataclasses.fields(cls)]
    for key in table:
        if key not in names:
            raise RecipeError(
                f"{source}: unknown key {prefix}{key}; "
                f"{f'[{prefix[:-1]}]' if prefix else 'the top level'} takes "
                f"{', '.join(name for name in names if prefix or name != 'name')}.",
                key=f"{prefix}{key}",
            )
    values = {}
    for key, value in table.items():
        if dataclasses.is_dataclass(hints[key]):
            values[key] = _build(
                hints[key], value, prefix=f"{prefix}{key}.", source=source, origins=origins
            )
        else:
            values[key] = value
    try:
        return cls(**values)
    except ConfigError as error:
        where = "" if cls.__module__ == __name__ else f"{prefix.rstrip('.')}: "
        field_name = (error.key or "").rsplit(".", 1)[-1]
        origin = origins.get(f"{prefix}{field_name}", source)
        raise RecipeError(f"{origin}: {where}{error}", key=error.key) from error


def _check_known(cls, dotted_key, source):
    """Raise unless `dotted_key` names a field of `cls` (through its section dataclasses)."""
    *sections, key = dotted_key.split(".")
    for depth, section in enumerate(sections):
        hint = typing.get_type_hints(cls).get(section)
        if not dataclasses.is_dataclass(hint):
            raise RecipeError(f"{source}: unknown section {'.'.join(sections[: depth + 1])}.")
        cls = hint
    if key not in {item.name for item in dataclasses.fields(cls)} or dotted_key == "name":
        raise RecipeError(f"{source}: unknown key {dotted_key}.")


def _set_nested(table, dotted_key, value):
    *sections, key = dotted_key.split(".")
    for section in sections:
        table = table.setdefault(section, {})
    table[key] = value
