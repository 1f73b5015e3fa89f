"""Input pipelines: class folders, ImageNet TFRecords, prepared TFDS datasets and the bundled
digits, with TF-slim's Inception preprocessing."""

from keras_inception.data.config import DataConfig
from keras_inception.data.decoding import SkipCounter
from keras_inception.data.pipeline import DataBundle, load_raw, make_datasets
from keras_inception.data.preprocessing import eval_preprocessing, train_preprocessing

__all__ = [
    "DataBundle",
    "DataConfig",
    "SkipCounter",
    "eval_preprocessing",
    "load_raw",
    "make_datasets",
    "train_preprocessing",
]
