"""Input pipelines: class folders, ImageNet TFRecords, prepared TFDS datasets and the bundled
digits, with TF-slim's Inception preprocessing.

The names below load their module on first use, so that a recipe, which holds a `DataConfig`,
loads without TensorFlow (the models and the recipe's compile step run on any Keras backend).
"""

from keras_inception.lazy import lazy_exports

_EXPORTS = {
    "DataBundle": "keras_inception.data.pipeline",
    "DataConfig": "keras_inception.data.config",
    "PIXEL_SCALINGS": "keras_inception.data.preprocessing",
    "SkipCounter": "keras_inception.data.decoding",
    "eval_preprocessing": "keras_inception.data.preprocessing",
    "fixed_standardization": "keras_inception.data.preprocessing",
    "load_raw": "keras_inception.data.pipeline",
    "make_datasets": "keras_inception.data.pipeline",
    "pixel_scaling": "keras_inception.data.preprocessing",
    "prewhiten": "keras_inception.data.preprocessing",
    "read_image": "keras_inception.data.decoding",
    "train_preprocessing": "keras_inception.data.preprocessing",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
