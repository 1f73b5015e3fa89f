"""Input pipelines: class folders, ImageNet TFRecords, prepared TFDS datasets and the bundled
digits, with TF-slim's Inception preprocessing."""

from keras_inception.data.config import DataConfig
from keras_inception.data.decoding import SkipCounter, read_image
from keras_inception.data.pipeline import DataBundle, load_raw, make_datasets
from keras_inception.data.preprocessing import (
    PIXEL_SCALINGS,
    eval_preprocessing,
    fixed_standardization,
    pixel_scaling,
    prewhiten,
    train_preprocessing,
)

__all__ = [
    "PIXEL_SCALINGS",
    "DataBundle",
    "DataConfig",
    "SkipCounter",
    "eval_preprocessing",
    "fixed_standardization",
    "load_raw",
    "make_datasets",
    "pixel_scaling",
    "prewhiten",
    "read_image",
    "train_preprocessing",
]
