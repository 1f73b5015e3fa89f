"""The model an export holds: raw uint8 images in, class probabilities out."""

import keras
import tensorflow as tf

from keras_inception.data.preprocessing import EVAL_CROP_FRACTION, central_crop
from keras_inception.evaluation.ensemble import Member
from keras_inception.imagenet import scale_pixels


class RawImagePreprocessing(keras.layers.Layer):
    """uint8 RGB images [N, H, W, 3] (or one image [H, W, 3]) of any size -> the network's input:
    the central crop evaluation uses, resized to `size`, scaled to [-1, 1]. TensorFlow ops only,
    each of which every export format converts."""

    def __init__(self, size, fraction=EVAL_CROP_FRACTION, **kwargs):
        super().__init__(**kwargs)
        self.size = tuple(size)
        self.fraction = fraction

    def call(self, images):
        return scale_pixels(central_crop(images, self.size, self.fraction))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-3], *self.size, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "fraction": self.fraction}


def serving_model(model, raw_images=True, image_size=None):
    """`model` as the Keras model an export holds: its main output as probabilities (a softmax
    added to a model that returns logits, an auxiliary head dropped). With `raw_images`, it takes
    uint8 images of `image_size` (height, width), or of any size when None, and preprocesses them
    as `predict` does; otherwise it takes the network's own float input in [-1, 1]."""
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "Exporting needs the TensorFlow backend (KERAS_BACKEND=tensorflow); this Keras runs "
            f"on {keras.backend.backend()}."
        )
    member = Member(model)
    probabilities = member.probability_model(name=f"{model.name}_probabilities")
    if not raw_images:
        return probabilities
    height, width = (None, None) if image_size is None else image_size
    images = keras.Input((height, width, 3), dtype="uint8", name="images")
    inputs = RawImagePreprocessing(member.input_size, name="preprocessing")(images)
    return keras.Model(images, probabilities(inputs), name=f"{model.name}_serving")


def to_rgb(images):
    """uint8 images [N, H, W, C] with 1 (grayscale) or 3 channels as RGB [N, H, W, 3]."""
    images = tf.cond(
        tf.shape(images)[-1] == 1, lambda: tf.image.grayscale_to_rgb(images), lambda: images
    )
    return tf.ensure_shape(images, [None, None, None, 3])


def decode_image(encoded):
    """One encoded image (JPEG, PNG, GIF's first frame, BMP) as uint8 RGB [H, W, 3]."""
    return tf.io.decode_image(encoded, channels=3, expand_animations=False)
