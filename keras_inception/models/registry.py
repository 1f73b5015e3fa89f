"""The networks of the package: one `NetworkSpec` each, registered once by the network's own file.

Everything that needs to know which networks exist, or a fact about one of them (recipes, the
weight converters, the command line, tests, benchmarks), reads it here, so adding a network means
its own file plus its converter tables. Published weights are data (`PretrainedWeights`): where the
file lies and how its images were fed. Reading them is `keras_inception.weights`' job; that package
imports this one, never the reverse, and the package root plugs its loader in here
(`set_pretrained_loader`).
"""

import dataclasses
from collections.abc import Callable, Mapping

from keras_inception.errors import ConfigError

# The strides of the feature maps `feature_model` returns, as keras-hub's P2..P5.
FEATURE_STRIDES = (4, 8, 16, 32)


@dataclasses.dataclass(frozen=True)
class PretrainedWeights:
    """Published weights, as data.

    Attributes:
        url, md5: the file and its MD5 (None where the publisher gives none: fetched unpinned).
        source_format: how `keras_inception.weights` reads it ("slim", "pytorch",
            "keras-applications").
        model_config: factory arguments of the model the file fills (all of the source's heads,
            so that any configuration can take its part).
        converted_name: the cached `.weights.h5` of a source worth converting once (slim's
            tarball, a PyTorch file), so later loads need neither the source nor PyTorch.
        input_size, crop_fraction, preprocessing: how images were fed to these weights: the
            side, the central crop fraction of evaluation, and the pixel scaling
            ("inception": [-1, 1]; "fixed_standardization": (x - 127.5) / 128, FaceNet's).
        cache_dir: where the `models/` cache folder lives; None is the Keras cache.
    """

    url: str
    source_format: str
    md5: str | None = None
    model_config: Mapping = dataclasses.field(default_factory=dict)
    converted_name: str | None = None
    input_size: int = 299
    crop_fraction: float = 0.875
    preprocessing: str = "inception"
    cache_dir: str | None = None

    @property
    def embedding_size(self):
        """The FaceNet embedding these weights end in, or None for a classifier."""
        return self.model_config.get("embedding_size")


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """What the rest of the package knows about one network.

    Attributes:
        name: the name recipes, converters and the command line use (`inception_v4`).
        factory: the `keras.applications`-style model function.
        slim_scope: the variable scope of TF-slim's checkpoints (`InceptionV4`).
        residual_scales: the default scale of each residual block type (A, B, C); None for a
            network without residual blocks (which refuses `residual_scale`).
        depths, min_depths, max_depth: blocks per stage (A, B, C) by default, at least, at most.
        embedding: whether it takes FaceNet's embedding head (`embedding_size`).
        feature_scopes: for each stride in `FEATURE_STRIDES`, the top-level slim scopes of that
            stage; the last layer built under them is the stage's end point.
        weights: the named published weights (`weights="imagenet"`), by name.
        title: how people write the name.
    """

    name: str
    title: str
    factory: Callable
    slim_scope: str
    depths: tuple[int, int, int]
    feature_scopes: Mapping[int, tuple[str, ...]]
    weights: dict[str, PretrainedWeights] = dataclasses.field(default_factory=dict)
    residual_scales: tuple[float, float, float] | None = None
    min_depths: tuple[int, int, int] = (0, 0, 0)
    max_depth: int | None = None
    embedding: bool = False

    @property
    def residual(self):
        """Whether the network has residual blocks."""
        return self.residual_scales is not None


_NETWORKS: dict[str, NetworkSpec] = {}
_pretrained_loader = None


def register(spec):
    """Add `spec` to the registry (each network's file does this once) and return it."""
    if spec.name in _NETWORKS:
        raise ValueError(f"A network named {spec.name!r} is registered already.")
    if set(spec.feature_scopes) != set(FEATURE_STRIDES):
        raise ValueError(f"{spec.name}: feature_scopes needs the strides {FEATURE_STRIDES}.")
    _NETWORKS[spec.name] = spec
    return spec


def network_names():
    """The registered networks' names, in registration order."""
    return tuple(_NETWORKS)


def networks():
    """The registered `NetworkSpec`s, in registration order."""
    return tuple(_NETWORKS.values())


def get_network(name, key="network"):
    """The `NetworkSpec` called `name`; a `ConfigError` naming `key` and the choices otherwise."""
    if name not in _NETWORKS:
        raise ConfigError(f"{key} must be one of {network_names()}, got {name!r}.", key=key)
    return _NETWORKS[name]


def set_pretrained_loader(loader):
    """Plug in `loader(model, spec, weights_name)`, which sets `model`'s weights from
    `spec.weights[weights_name]` (the package root plugs in `keras_inception.weights`')."""
    global _pretrained_loader
    _pretrained_loader = loader


def load_pretrained(model, spec, weights_name):
    """Set `model`'s weights from the named published weights, through the plugged-in loader."""
    if _pretrained_loader is None:
        raise RuntimeError("No pretrained-weights loader: import keras_inception first.")
    return _pretrained_loader(model, spec, weights_name)
