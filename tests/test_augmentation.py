"""The keras-cv augmentation for small data sets: RandAugment, MixUp and CutMix each change the
training data as they should, are off by default, and replay a resumed epoch."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_inception.data import DataConfig, make_datasets
from keras_inception.data.augmentation import mix_batches, rand_augment

SIZE = 75
# Solid class colours in [-1, 1]: the pixels of a mixed image say which classes went into it.
COLOURS = np.array(
    [[0.8, -0.6, -0.6], [-0.6, -0.6, 0.8], [-0.6, 0.8, -0.6], [0.8, 0.8, -0.8]], "float32"
)


def solid_batch(labels, size=24):
    labels = np.asarray(labels)
    images = np.broadcast_to(COLOURS[labels][:, None, None, :], (len(labels), size, size, 3))
    return tf.constant(images), tf.constant(labels, tf.int32)


def colour_fractions(images):
    """[batch, classes]: the share of each image's pixels in each class colour."""
    distances = np.abs(images[..., None, :] - COLOURS).max(axis=-1)
    nearest = distances.argmin(axis=-1)
    return np.stack([(nearest == k).mean(axis=(1, 2)) for k in range(len(COLOURS))], axis=1)


def gradient_image(size=32):
    """A smooth colour image in [-1, 1], which every RandAugment operation changes."""
    ramp = np.linspace(-1.0, 1.0, size, dtype="float32")
    return tf.constant(np.stack(np.broadcast_arrays(ramp[:, None], ramp[None, :], 0.3), axis=-1))


def test_augmentation_is_off_by_default_and_labels_stay_class_indices():
    config = DataConfig()
    assert (config.rand_augment, config.mixup, config.cutmix) == (False, 0.0, 0.0)
    assert not config.mixes_batches
    images, labels = make_datasets(config, image_size=SIZE, batch_size=8).train.element_spec
    assert (images.dtype, images.shape) == (tf.float32, (8, SIZE, SIZE, 3))
    assert (labels.dtype, labels.shape) == (tf.int32, (8,))


def test_rand_augment_changes_images_within_range_and_replays_from_the_generator():
    image = gradient_image()
    generator = tf.random.Generator.from_seed(1, alg="philox")
    global_generator = tf.random.Generator.from_seed(0)  # set, as op determinism requires
    tf.random.set_global_generator(global_generator)
    layer = rand_augment(0.5, generator)
    assert tf.random.get_global_generator() is global_generator  # lent while building, restored
    state = generator.state.numpy()
    first = [layer(image).numpy() for _ in range(6)]
    generator.state.assign(state)
    for again, result in zip([layer(image).numpy() for _ in range(6)], first):
        np.testing.assert_array_equal(again, result)
    assert all(result.dtype == np.float32 and -1.0 <= result.min() <= result.max() <= 1.0
               for result in first)  # fmt: skip
    changes = [np.abs(result - image.numpy()).max() for result in first]
    assert sum(change > 0.05 for change in changes) >= 4, changes
    assert len({result.tobytes() for result in first}) == len(first)  # each draw its own


def test_rand_augment_computes_in_float32_under_mixed_precision():
    """Its operations run on the input pipeline: a bfloat16 policy must not reach them."""
    image = gradient_image()
    results = []
    previous = keras.mixed_precision.global_policy()
    for policy in ("float32", "mixed_bfloat16"):
        keras.mixed_precision.set_global_policy(policy)
        try:
            layer = rand_augment(0.5, tf.random.Generator.from_seed(2, alg="philox"))
        finally:
            keras.mixed_precision.set_global_policy(previous)
        results.append([layer(image).numpy() for _ in range(4)])
    np.testing.assert_array_equal(results[0], results[1])


def mixed_solid_batch(mixup, cutmix, seed):
    """A batch of 8 solid images of 4 classes mixed, as arrays, its labels checked to be mixed
    one-hot rows."""
    images, labels = solid_batch(np.arange(8) % 4)
    generator = tf.random.Generator.from_seed(seed)
    mixed_images, mixed_labels = mix_batches(mixup, cutmix, 4, generator)(images, labels)
    mixed_images, mixed_labels = mixed_images.numpy(), mixed_labels.numpy()
    assert mixed_labels.dtype == np.float32 and mixed_labels.shape == (8, 4)
    np.testing.assert_allclose(mixed_labels.sum(axis=1), 1.0, atol=1e-6)
    assert mixed_labels.max(axis=1).min() < 0.99  # not all one-hot
    return images, mixed_images, mixed_labels


def test_mixup_mixes_images_and_labels_alike():
    _, mixed_images, mixed_labels = mixed_solid_batch(0.4, 0.0, 3)
    # Each image is the same blend of class colours as its label.
    expected = np.broadcast_to((mixed_labels @ COLOURS)[:, None, None, :], mixed_images.shape)
    np.testing.assert_allclose(mixed_images, expected, atol=1e-5)
    assert -1.0 <= mixed_images.min() and mixed_images.max() <= 1.0


def test_cutmix_pastes_a_partners_box_and_weights_its_label():
    images, mixed_images, mixed_labels = mixed_solid_batch(0.0, 1.0, 4)
    # Pixels are copied whole, from the image or its partner: every one is a class colour of a
    # class its label weights. (keras-cv weights the label by the box before clipping it to the
    # image, so near a border the shares of pixels and of the label differ.)
    assert np.abs(mixed_images[..., None, :] - COLOURS).max(axis=-1).min(axis=-1).max() < 1e-6
    fractions = colour_fractions(mixed_images)
    assert np.all(mixed_labels[fractions > 0] > 0)
    assert (fractions.max(axis=1) < 1).any()  # some boxes were pasted


def test_with_both_on_each_batch_gets_one_of_the_two():
    mix = mix_batches(0.4, 1.0, 4, tf.random.Generator.from_seed(5))
    images, labels = solid_batch(np.arange(8) % 4)
    kinds = set()
    for _ in range(12):
        mixed = mix(images, labels)[0].numpy()
        pure = np.abs(mixed[..., None, :] - COLOURS).max(axis=-1).min(axis=-1).max() < 1e-6
        kinds.add("cutmix" if pure else "mixup")
    assert kinds == {"mixup", "cutmix"}


def test_the_pipeline_yields_mixed_one_hot_labels_with_every_augmentation_on():
    config = DataConfig(rand_augment=True, mixup=0.2, cutmix=1.0, classes=("3", "1", "7"))
    bundle = make_datasets(config, image_size=SIZE, batch_size=8, seed=1)
    images, labels = next(iter(bundle.train))
    assert images.shape == (8, SIZE, SIZE, 3) and labels.shape == (8, 3)
    assert labels.dtype == tf.float32
    np.testing.assert_allclose(tf.reduce_sum(labels, axis=1), 1.0, atol=1e-6)
    assert -1.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
    assert next(iter(bundle.validation))[1].dtype == tf.int32  # validation is left alone


def test_mixing_needs_one_of_the_two_on():
    with pytest.raises(ValueError, match="mixup or cutmix"):
        mix_batches(0.0, 0.0, 4, tf.random.Generator.from_seed(0))
    with pytest.raises(ValueError, match="DataConfig.cutmix"):
        DataConfig(cutmix=-0.5)
    with pytest.raises(ValueError, match="DataConfig.rand_augment_magnitude"):
        DataConfig(rand_augment_magnitude=1.5)


# A child process set up as `train` sets one up (global seed, op determinism): for each setting,
# digests of epoch 3 read after epochs 0-2, read again, read first by a fresh pipeline (a
# resumed run), and of epoch 4; and the labels' digest.
REPLAY_SCRIPT = textwrap.dedent(
    """
    import hashlib, json
    import keras, tensorflow as tf
    from keras_inception.data import DataConfig, make_datasets

    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    SETTINGS = {
        "none": {}, "rand_augment": {"rand_augment": True}, "mixup": {"mixup": 0.4},
        "cutmix": {"cutmix": 1.0}, "both": {"mixup": 0.4, "cutmix": 1.0},
    }

    def build(settings):
        config = DataConfig(
            classes=["0", "1", "2"], examples_per_class=8, min_crop_area=0.5, **settings
        )
        return make_datasets(config, image_size=32, batch_size=8, seed=5)

    def epoch(bundle, number):
        bundle.set_epoch(number)
        batches = [(images.numpy(), labels.numpy()) for images, labels in bundle.train]
        digest = lambda arrays: hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()
        return digest([a for batch in batches for a in batch]), digest([b for _, b in batches])

    results = {}
    for name, settings in SETTINGS.items():
        run = build(settings)
        for number in range(3):
            epoch(run, number)
        (third, labels), (again, _) = epoch(run, 3), epoch(run, 3)
        (fourth, _), (resumed, _) = epoch(run, 4), epoch(build(settings), 3)
        results[name] = dict(third=third, again=again, resumed=resumed, fourth=fourth,
                             labels=labels)
    print(json.dumps(results))
    """
)


@pytest.mark.subprocess
def test_each_augmentation_replays_the_same_epoch_and_a_resumed_one():
    """Crops and RandAugment replay through the pipeline's generator; MixUp and CutMix through
    TensorFlow's global seed, their random ops starting afresh with each pass (see
    keras_inception/data/augmentation.py)."""
    output = subprocess.run(
        [sys.executable, "-c", REPLAY_SCRIPT], capture_output=True, text=True, check=True
    ).stdout
    results = json.loads(output.strip().splitlines()[-1])
    for name, digests in results.items():
        assert digests["again"] == digests["third"], f"{name}: the same epoch read differently"
        assert digests["resumed"] == digests["third"], f"{name}: a resumed epoch read differently"
        assert digests["fourth"] != digests["third"], f"{name}: the next epoch read the same"
    # RandAugment changes the pixels only: the same examples in the same order.
    assert results["rand_augment"]["labels"] == results["none"]["labels"]
    assert results["rand_augment"]["third"] != results["none"]["third"]
