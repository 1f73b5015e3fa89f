"""The package's errors and the one way it checks a setting.

Every bad setting, whichever part of the package finds it (a factory argument, a recipe key, a
data or cluster setting), is a `ConfigError`: a `ValueError` that names the setting in `key`, so
the recipe can say which key of which file was wrong and the command line can report it in one
line. A missing optional package is always an `ImportError` saying what to install.
"""

import dataclasses
import importlib
import types
import typing


class ConfigError(ValueError):
    """A setting that cannot work; `key` names it (`depths`, `model.depths`, `data.source`)."""

    def __init__(self, message, key=None):
        super().__init__(message)
        self.key = key


class RecipeError(ConfigError):
    """A recipe that cannot describe a run; the message names the file (or `--set`) and the key."""


class TrainingStopped(RuntimeError):
    """A run that ended without finishing; `status` is the command line's exit status for it."""

    status = 1


class DeadNetworkError(TrainingStopped):
    """Training was stopped because the features before global pooling had died (all zeros)."""

    status = 3


class NonFiniteLossError(TrainingStopped):
    """Training was stopped because the loss became NaN or infinite."""

    status = 5


class StoppedRunError(TrainingStopped):
    """A run folder whose run stopped earlier was asked to train again without `--restart`."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


def check(condition, key, expectation, value):
    """Raise `ConfigError("<key> must be <expectation>, got <value>.")` unless `condition`."""
    if not condition:
        raise ConfigError(f"{key} must be {expectation}, got {value!r}.", key=key)


def is_int(value, minimum=None):
    """Whether `value` is an int (not a bool) of at least `minimum`."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (minimum is None or value >= minimum)
    )


def is_number(value):
    """Whether `value` is an int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require(module, purpose, install):
    """Import `module` for `purpose`, or raise an `ImportError` that says `pip install <install>`."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"{purpose} needs {module}: pip install {install}") from error


def coerce_fields(config, section):
    """Check each field of the dataclass instance `config` against its type annotation (int,
    float, bool, str, `X | None`, `tuple[X, ...]`), taking an int for a float, a list for a
    tuple and `false` for None; a mismatch is a `ConfigError` keyed `<section>.<field>`
    (`<field>` for no section). Config dataclasses call it first in `__post_init__`, so a bad
    type fails alike from a TOML file and from Python."""
    hints = typing.get_type_hints(type(config))
    for item in dataclasses.fields(config):
        key = f"{section}.{item.name}" if section else item.name
        value = _coerce(getattr(config, item.name), hints[item.name], key)
        object.__setattr__(config, item.name, value)


def _coerce(value, hint, key):
    if isinstance(hint, types.UnionType):
        kinds = [kind for kind in typing.get_args(hint) if kind is not type(None)]
        optional = len(kinds) < len(typing.get_args(hint))
        # TOML has no null: `false` turns off a setting that is on by default (`X | None`).
        if optional and (value is None or (value is False and bool not in kinds)):
            return None
        errors = []
        for kind in kinds:  # the first kind that takes the value
            try:
                return _coerce(value, kind, key)
            except ConfigError as error:
                errors.append(str(error).removeprefix(f"{key} must be ").removesuffix("."))
        expectations = " or ".join(error.split(", got ")[0] for error in errors)
        raise ConfigError(f"{key} must be {expectations}, got {value!r}.", key=key)
    if typing.get_origin(hint) is tuple:
        kinds = typing.get_args(hint)
        if kinds[-1] is Ellipsis:  # tuple[X, ...]: any length
            kinds = kinds[:1] * len(value) if isinstance(value, (list, tuple)) else kinds[:1]
            count = "any number of"
        else:
            count = len(kinds)
        if not isinstance(value, (list, tuple)) or len(value) != len(kinds):
            raise ConfigError(
                f"{key} must be a list of {count} {kinds[0].__name__}s, got {value!r}.", key=key
            )
        return tuple(_coerce(item, kind, key) for item, kind in zip(value, kinds))
    if hint is float and is_int(value):
        return float(value)
    if type(value) is hint:
        return value
    raise ConfigError(f"{key} must be {hint.__name__}, got {value!r}.", key=key)
