"""Loading the published weights that the networks' specs name (`weights="imagenet"`, the
FaceNet names).

Each file is fetched with `keras.utils.get_file` into the Keras cache (`~/.keras/models`). Files
that need converting (slim's tarball, facenet-pytorch's `.pt`) are converted once and the result is
cached beside the download as a `.weights.h5`, so later loads need neither the checkpoint nor
PyTorch. Only keras.applications publishes a hash; the other files are fetched unpinned.
"""

import os

import keras

from keras_inception.weights.convert import read_source, save_weights
from keras_inception.weights.matching import Source, assign_weights, model_tensors


def load_pretrained(model, spec, name):
    """Set `model`'s weights from `spec.weights[name]`, strictly (see `assign_weights`)."""
    return assign_weights(model, read_pretrained(spec, name))


def read_pretrained(spec, name):
    """Download (or find in the cache) the weights `spec.weights[name]` and read them into a
    `Source`, converting them once where they need it."""
    pretrained = spec.weights[name]
    download = _fetch(pretrained)
    if pretrained.converted_name is None:
        return read_source(download, spec.name, pretrained.source_format)
    converted = os.path.join(os.path.dirname(download), pretrained.converted_name)
    if os.path.exists(converted):
        model = spec.factory(weights=converted, **pretrained.model_config)
    else:
        source = _fetch(pretrained, extract=True) if _is_archive(download) else download
        model = spec.factory(weights=None, **pretrained.model_config)
        assign_weights(model, read_source(source, spec.name, pretrained.source_format))
        save_weights(model, converted)
    return Source(f"{pretrained.url} (converted to {converted})", model_tensors(model))


def _fetch(pretrained, extract=False):
    return keras.utils.get_file(
        os.path.basename(pretrained.url),
        pretrained.url,
        cache_subdir="models",
        file_hash=pretrained.md5,
        cache_dir=pretrained.cache_dir,
        extract=extract,
    )


def _is_archive(path):
    return path.endswith((".tar.gz", ".tgz"))
