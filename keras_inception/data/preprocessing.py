"""TF-slim's "inception" preprocessing, as per-image functions for `tf.data`, and the pixel
scalings each set of published weights was trained with.

The two pipelines take one uint8 RGB image of any size and return float32 pixels in [-1, 1] of
`image_size`. The training one draws every random number from one `tf.random.Generator`, so
setting that generator's state replays the same augmentation.
"""

import numpy as np
import tensorflow as tf

from keras_inception.data.augmentation import inception_crop
from keras_inception.errors import ConfigError
from keras_inception.imagenet import preprocess_input, scale_pixels

EVAL_CROP_FRACTION = 0.875

# Each takes an image and a stateless seed ([2] int64).
_COLOUR_OPS = {
    "brightness": lambda image, seed: tf.image.stateless_random_brightness(
        image, max_delta=32.0 / 255.0, seed=seed
    ),
    "saturation": lambda image, seed: adjust_saturation(
        image, tf.random.stateless_uniform([], seed, 0.5, 1.5)
    ),
    "hue": lambda image, seed: tf.image.stateless_random_hue(image, max_delta=0.2, seed=seed),
    "contrast": lambda image, seed: tf.image.stateless_random_contrast(
        image, lower=0.5, upper=1.5, seed=seed
    ),
}

# Slim's `distort_color`: fast mode always uses its first ordering, full mode draws one of four.
_COLOUR_ORDERINGS = {
    "none": [()],
    "fast": [("brightness", "saturation")],
    "full": [
        ("brightness", "saturation", "hue", "contrast"),
        ("saturation", "brightness", "contrast", "hue"),
        ("contrast", "hue", "brightness", "saturation"),
        ("hue", "saturation", "contrast", "brightness"),
    ],
}


def train_preprocessing(image_size, colour_distortion="fast", min_crop_area=0.05, generator=None):
    """Random Inception crop resized to `image_size`, random horizontal flip, slim's colour
    distortion, then [-1, 1], all drawn from `generator` (a `tf.random.Generator`; default a
    new one in a non-deterministic state)."""
    if generator is None:
        generator = tf.random.Generator.from_non_deterministic_state()
    crop = inception_crop(image_size, min_crop_area, generator)
    orderings = [_chain(names) for names in _COLOUR_ORDERINGS[colour_distortion]]

    def distort_colour(image, seed):
        choice_seed, ops_seed = tf.unstack(tf.random.experimental.stateless_split(seed))
        op_seeds = tf.unstack(tf.random.experimental.stateless_split(ops_seed, len(_COLOUR_OPS)))
        op_seeds = dict(zip(_COLOUR_OPS, op_seeds))
        if len(orderings) == 1:
            return orderings[0](image, op_seeds)
        choice = tf.random.stateless_uniform([], choice_seed, maxval=len(orderings), dtype=tf.int32)
        return tf.switch_case(
            choice, [lambda ordering=o: ordering(image, op_seeds) for o in orderings]
        )

    def preprocess(image):
        # Cropping the uint8 image (to float) is twice as fast as converting the whole image first.
        image = crop(image) / 255.0
        flip_seed, colour_seed = tf.unstack(generator.make_seeds(2), axis=1)
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        image = tf.clip_by_value(distort_colour(image, colour_seed), 0.0, 1.0)
        return scale_pixels(image * 255.0)

    return preprocess


def central_crop(images, image_size, fraction=EVAL_CROP_FRACTION):
    """Slim's evaluation crop, the package's one central crop (training's validation,
    `evaluate --crops single`, `predict`, exported models): the central `fraction` of each side,
    cut at whole pixels, resized bilinearly to `image_size`; float32 in the images' value range.

    `images` is one image [H, W, C] or a batch [N, H, W, C] of any size. The cut is
    `tf.image.central_crop`'s, to the pixel, written with float32 and int32 ops only (that op
    computes in float64) and a plain slice, so that every export format takes it as it is.
    """
    size = tf.shape(images)[-3:-1]
    sides = tf.cast(size, tf.float32)
    start = tf.cast((sides - sides * fraction) / 2, tf.int32)  # exact below 2**21 pixels
    end = size - start
    cut = images[..., start[0] : end[0], start[1] : end[1], :]
    return tf.image.resize(tf.cast(cut, tf.float32), image_size, method="bilinear")


def eval_preprocessing(image_size):
    """`central_crop`, then the [-1, 1] scaling (`scale_pixels`)."""

    def preprocess(image):
        return scale_pixels(central_crop(image, image_size))

    return preprocess


def fixed_standardization(images):
    """FaceNet's fixed scaling, `(x - 127.5) / 128`: facenet-pytorch's
    `fixed_image_standardization` and Sandberg's `--use_fixed_image_standardization`, the input
    of the 2018 weights (facenet-vggface2, facenet-casia). Arrays stay arrays, as float32."""
    images = (
        images.astype("float32") if isinstance(images, np.ndarray) else tf.cast(images, "float32")
    )
    return (images - 127.5) / 128.0


def prewhiten(images):
    """Sandberg's per-image standardisation, the input of his 2017 checkpoints:
    `(x - mean) / max(std, 1 / sqrt(x.size))` with each image's own mean and standard deviation
    over its pixels and channels (facenet's `prewhiten`, `tf.image.per_image_standardization`).

    `images` is one image [H, W, C] or a batch [N, H, W, C]; arrays stay arrays, as float32.
    """
    # Cast first: per_image_standardization scales integer images to [0, 1], which moves the floor.
    standardised = tf.image.per_image_standardization(tf.cast(images, "float32"))
    return standardised.numpy() if isinstance(images, np.ndarray) else standardised


# The registry's `PretrainedWeights.preprocessing` names, each with its scaling of [0, 255] pixels.
PIXEL_SCALINGS = {
    "inception": preprocess_input,
    "fixed_standardization": fixed_standardization,
    "prewhiten": prewhiten,
}


def pixel_scaling(name):
    """The scaling called `name` in `PIXEL_SCALINGS`; a `ConfigError` listing them otherwise."""
    if name not in PIXEL_SCALINGS:
        raise ConfigError(
            f"preprocessing must be one of {', '.join(PIXEL_SCALINGS)}; got {name!r}.",
            key="preprocessing",
        )
    return PIXEL_SCALINGS[name]


def adjust_saturation(image, factor):
    """`tf.image.adjust_saturation` for float RGB, several times faster: at fixed hue and value,
    scaling HSV saturation by `factor` moves each channel along a line through the brightest
    one, `max + s * (channel - max)`, with `s` capped where saturation reaches 1 and 0 for
    pixels whose value is not positive (those HSV turns grey)."""
    red, green, blue = tf.unstack(image, axis=-1)  # faster than reducing the short last axis
    high = tf.maximum(tf.maximum(red, green), blue)[..., tf.newaxis]
    low = tf.minimum(tf.minimum(red, green), blue)[..., tf.newaxis]
    cap = tf.maximum(tf.math.divide_no_nan(high, high - low), 0.0)  # 0 where value <= 0
    return high + tf.minimum(factor, cap) * (image - high)


def _chain(names):
    def apply(image, op_seeds):
        for name in names:
            image = _COLOUR_OPS[name](image, op_seeds[name])
        return image

    return apply
