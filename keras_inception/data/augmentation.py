"""The Inception random crop, the one piece core Keras lacks, taken from keras-cv.

This is the only module that imports keras-cv, so moving to keras-hub touches one file.
"""

import keras_cv

from keras_inception.keras_internals import set_random_generator

ASPECT_RATIO_RANGE = (3 / 4, 4 / 3)


class GeneratorFactor(keras_cv.core.FactorSampler):
    """A factor drawn uniformly from [lower, upper) by a `tf.random.Generator`."""

    def __init__(self, lower, upper, generator):
        self.lower, self.upper, self.generator = lower, upper, generator

    def __call__(self, shape=(), dtype="float32"):
        return self.generator.uniform(shape, self.lower, self.upper, dtype=dtype)


def inception_crop(image_size, min_area, generator):
    """A layer that crops a random box (area fraction in [min_area, 1], aspect ratio in
    [3/4, 4/3]) from one float image and resizes it bilinearly to `image_size` (height, width).

    Every number it draws comes from `generator` (a `tf.random.Generator`), so setting the
    generator's state replays the same crops.
    """
    layer = keras_cv.layers.RandomCropAndResize(
        target_size=tuple(image_size),
        crop_area_factor=GeneratorFactor(min_area, 1.0, generator),
        aspect_ratio_factor=GeneratorFactor(*ASPECT_RATIO_RANGE, generator),
        interpolation="bilinear",
        seed=0,  # gives the layer a generator of its own (replaced below), not the global one
        dtype="float32",
    )
    # keras-cv draws the box's position from this generator, the factors above from theirs.
    set_random_generator(layer, generator)
    return layer
