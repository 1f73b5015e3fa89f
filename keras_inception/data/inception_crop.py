"""The Inception random crop, the one piece core Keras lacks, taken from keras-cv.

This is the only module that imports keras-cv, so moving to keras-hub touches one file.
"""

import keras_cv

ASPECT_RATIO_RANGE = (3 / 4, 4 / 3)


def inception_crop(image_size, min_area, seed=None):
    """A layer that crops a random box (area fraction in [min_area, 1], aspect ratio in
    [3/4, 4/3]) from one float image and resizes it bilinearly to `image_size` (height, width).
    """
    return keras_cv.layers.RandomCropAndResize(
        target_size=tuple(image_size),
        crop_area_factor=(min_area, 1.0),
        aspect_ratio_factor=ASPECT_RATIO_RANGE,
        interpolation="bilinear",
        seed=seed,
        dtype="float32",
    )
