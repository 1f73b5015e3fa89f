"""The data pipeline: each source reads a small dataset the test writes, bad data fails early."""

import numpy as np
import pytest
import tensorflow as tf

from keras_inception.data import DataConfig, eval_preprocessing, load_raw, make_datasets

SIZE = 75


def labels_of(dataset):
    return np.concatenate([labels.numpy() for _, labels in dataset])


def test_digits_batches_shapes_range_and_classes():
    bundle = make_datasets(DataConfig(), image_size=SIZE, batch_size=64, seed=3)
    assert bundle.num_classes == 10
    assert bundle.train_examples + bundle.validation_examples == 1797
    assert bundle.validation_examples == pytest.approx(0.2 * 1797, abs=1)
    images, labels = next(iter(bundle.train))
    assert images.shape == (64, SIZE, SIZE, 3) and images.dtype == tf.float32
    assert labels.dtype == tf.int32
    assert -1.0 <= float(tf.reduce_min(images)) < 0.0 < float(tf.reduce_max(images)) <= 1.0
    assert sum(1 for _ in bundle.train) == bundle.train_examples // 64  # full batches only
    validation_labels = labels_of(bundle.validation)
    assert len(validation_labels) == bundle.validation_examples
    assert set(validation_labels) == set(range(10))
    assert bundle.skipped.count == 0


def test_digits_split_is_fixed_whatever_the_training_seed():
    first = make_datasets(DataConfig(), image_size=SIZE, batch_size=32, seed=0)
    second = make_datasets(DataConfig(), image_size=SIZE, batch_size=32, seed=1)
    np.testing.assert_array_equal(labels_of(first.validation), labels_of(second.validation))
    train_raw, _ = load_raw(DataConfig(), "train")
    validation_raw, num_classes = load_raw(DataConfig(), "validation")
    train_images = {image.numpy().tobytes() for image, _ in train_raw}
    validation_images = [image.numpy() for image, _ in validation_raw]
    assert num_classes == 10
    assert validation_images[0].shape == (8, 8, 3) and validation_images[0].dtype == np.uint8
    # Mostly disjoint: a few digits are pixel-identical duplicates of each other.
    shared = sum(image.tobytes() in train_images for image in validation_images)
    assert shared < 0.02 * len(validation_images)
