"""Decoding images robustly: a corrupt or unreadable image is skipped and counted, never a crash."""

import tensorflow as tf

# What a split's payloads are: a file to read, encoded image bytes, or uint8 pixels already.
PATH, ENCODED, PIXELS = "path", "encoded", "pixels"


class SkipCounter:
    """A live count of images skipped because they could not be read or decoded (an image
    skipped in each of several epochs counts once per epoch).

    Each example raises the count on entry and lowers it once its image is decoded and
    transformed, so the count is exact whenever no image is in flight (for example once
    `fit` returns) and may briefly include images being decoded while the pipeline runs.
    """

    def __init__(self):
        self.variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_images")

    @property
    def count(self):
        return int(self.variable.numpy())

    def __repr__(self):
        return f"SkipCounter(count={self.count})"


def map_images(dataset, kind, transform, skipped):
    """Map `(payload, label)` to `(transform(uint8 RGB image), label)` in parallel.

    Grayscale and RGBA images become RGB, an animated GIF gives its first frame. Any example
    whose reading, decoding or transform fails is dropped and added to `skipped`.
    """

    def load(payload, label):
        with tf.control_dependencies([skipped.variable.assign_add(1)]):
            payload = tf.identity(payload)
        image = transform(_to_pixels(payload, kind))
        with tf.control_dependencies([image]):
            done = skipped.variable.assign_sub(1)
        with tf.control_dependencies([done]):
            return tf.identity(image), label

    return dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()


def _to_pixels(payload, kind):
    if kind == PIXELS:
        return payload
    if kind == PATH:
        payload = tf.io.read_file(payload)
    image = tf.io.decode_image(payload, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return image
