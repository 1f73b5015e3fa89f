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
        # The files whose image is on its way: those left once the pipeline is idle are the
        # unreadable ones (sources that read files; TFRecords and arrays have no file names).
        self.pending_files = tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, 0)

    @property
    def count(self):
        return int(self.variable.numpy())

    @property
    def files(self):
        """The unreadable image files seen so far, sorted, each once."""
        keys, _ = self.pending_files.export()
        return sorted(key.decode() for key in keys.numpy())

    def report(self, shown=5):
        """One line for the console: how many images were skipped, and which files."""
        files = self.files
        names = ", ".join(files[:shown]) + (
            f" and {len(files) - shown} more" if len(files) > shown else ""
        )
        return f"Skipped {self.count} unreadable images" + (f" ({names})." if files else ".")

    def __repr__(self):
        return f"SkipCounter(count={self.count})"


def map_images(dataset, kind, transform, skipped):
    """Map `(payload, label)` to `(transform(uint8 RGB image), label)` in parallel.

    Grayscale and RGBA images become RGB, an animated GIF gives its first frame. Any example
    whose reading, decoding or transform fails is dropped and added to `skipped`.
    """

    def load(payload, label):
        entering = [skipped.variable.assign_add(1)]
        if kind == PATH:
            entering.append(skipped.pending_files.insert(payload[None], tf.ones([1], tf.int64)))
        with tf.control_dependencies(entering):
            payload = tf.identity(payload)
        image = transform(_to_pixels(payload, kind))
        with tf.control_dependencies([image]):
            done = [skipped.variable.assign_sub(1)]
            if kind == PATH:
                done.append(skipped.pending_files.remove(payload[None]))
        with tf.control_dependencies(done):
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


def read_image(path):
    """One image file as uint8 RGB pixels [H, W, 3] (grayscale and RGBA made RGB, a GIF's first
    frame): where a pipeline skips what it cannot read, a single file is an error that names it."""
    try:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except tf.errors.OpError as error:
        raise ValueError(f"cannot read image {path}: {error.message}") from None
    return image.numpy()
