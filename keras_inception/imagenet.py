"""ImageNet input scaling and class names for the three networks.

The class names ship in `imagenet_classes.tsv` (WordNet id and short name of each of the 1000
classes, in the sorted-synset order that keras.applications, timm and TFDS share), so decoding
needs no download.
"""

import functools
from importlib import resources

import numpy as np
from keras import ops

NUM_CLASSES = 1000
BACKGROUND = ("background", "background")


def scale_pixels(x):
    """[0, 255] -> [-1, 1], the inputs the three networks were trained on: the package's one
    pixel scaling, for float arrays or tensors of any kind (tf.data pipelines included)."""
    return x / 127.5 - 1.0


def preprocess_input(x, data_format=None):
    """Scale RGB pixels in [0, 255] to [-1, 1], the "tf" mode of keras.applications.

    Accepts a NumPy array or a tensor of any backend and returns the same kind, as float32.
    `data_format` is accepted for keras.applications compatibility; the scaling is per pixel.
    """
    del data_format
    if isinstance(x, np.ndarray):
        return scale_pixels(x.astype("float32"))
    return scale_pixels(ops.cast(x, "float32"))


@functools.cache
def class_index():
    """The 1000 (WordNet id, name) pairs, index = class."""
    text = resources.files("keras_inception").joinpath("imagenet_classes.tsv").read_text("utf-8")
    return tuple(tuple(line.split("\t")) for line in text.splitlines())


def class_labels(num_classes, names=None):
    """A printable label for each of `num_classes` outputs: `names` (a model's own class names)
    when given, else ImageNet's "name (wnid)" for 1000 classes and for slim's 1001 (background
    first), else "class N"."""
    if names is not None:
        return list(names)
    if num_classes in (NUM_CLASSES, NUM_CLASSES + 1):
        index = class_index() if num_classes == NUM_CLASSES else (BACKGROUND, *class_index())
        return [name if wnid == name else f"{name} ({wnid})" for wnid, name in index]
    return [f"class {index}" for index in range(num_classes)]


def decode_predictions(preds, top=5):
    """Turn a batch of ImageNet scores into lists of (WordNet id, class name, score), best first.

    Handles both layouts: 1000 classes (keras.applications, timm) and 1001 with TF-slim's
    background class at index 0.
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] not in (NUM_CLASSES, NUM_CLASSES + 1):
        raise ValueError(
            "decode_predictions expects a batch of predictions of shape (samples, 1000) or "
            f"(samples, 1001) with slim's background class; got shape {preds.shape}."
        )
    names = class_index()
    if preds.shape[1] == NUM_CLASSES + 1:
        names = (BACKGROUND, *names)
    results = []
    for row in preds:
        best = np.argsort(row)[::-1][:top]
        results.append([(*names[i], float(row[i])) for i in best])
    return results
