"""keras-inception: Inception-v4 and Inception-ResNet-v1/v2 for Keras 3, with the paper's training
method. Importing the package registers its layers and its optimizer, so saved models load
without custom_objects."""

from keras_inception.imagenet import decode_predictions, preprocess_input
from keras_inception.models import (
    InceptionResNetV1,
    InceptionResNetV2,
    InceptionV4,
    ResidualScale,
    class_names,
    feature_model,
    registry,
)
from keras_inception.training import method as _registers_the_optimizer_and_weight_decay  # noqa: F401


def _load_pretrained(model, spec, name):
    """The factories' `weights="imagenet"`: the converters load on first use, so that importing
    the package for a model does not import them (and the models never import the converters)."""
    from keras_inception.weights import load_pretrained

    return load_pretrained(model, spec, name)


registry.set_pretrained_loader(_load_pretrained)

__version__ = "0.1.0"

__all__ = [
    "InceptionResNetV1",
    "InceptionResNetV2",
    "InceptionV4",
    "ResidualScale",
    "class_names",
    "decode_predictions",
    "export",
    "feature_model",
    "fit",
    "preprocess_input",
    "train",
]


def __getattr__(name):
    """`train` and `fit` load the training stack (tf.data, keras-cv, matplotlib), `export` the
    deployment one, on first use, so that importing the package for a model stays light."""
    if name in ("train", "fit"):
        from keras_inception import training

        return getattr(training, name)
    if name == "export":
        from keras_inception.deployment import export

        return export
    raise AttributeError(f"module 'keras_inception' has no attribute {name!r}")
