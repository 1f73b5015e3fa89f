"""The published weights behind `weights="imagenet"` and the FaceNet names.

Each file is fetched with `keras.utils.get_file` into the Keras cache (`~/.keras/models`). Files
that need converting (slim's tarball, facenet-pytorch's `.pt`) are converted once and the result is
cached beside the download as a `.weights.h5`, so later loads need neither the checkpoint nor
PyTorch. Only keras.applications publishes a hash; the other files are fetched unpinned.
"""

import dataclasses
import os

import keras

from keras_inception.weights.convert import factory, read_source, save_weights
from keras_inception.weights.matching import Source, assign_weights, model_tensors


@dataclasses.dataclass(frozen=True)
class WeightsFile:
    """A published weights file and how to read it into our models.

    `converted_name`: the cache file of the converted weights, for sources worth converting once.
    `model_config`: the factory arguments of the model that cache file holds (all of the source's
    heads, so that any configuration can take its part).
    `cache_dir`: where the `models/` cache folder lives; `None` is the Keras cache.
    """

    architecture: str
    url: str
    md5: str | None
    source_format: str
    converted_name: str | None = None
    model_config: dict = dataclasses.field(default_factory=dict)
    cache_dir: str | None = None

    def load(self, model):
        """Set `model`'s weights from this file (strictly; see `assign_weights`)."""
        return assign_weights(model, self.read())

    def read(self):
        """Download (or find in the cache) and read this file into a `Source`."""
        download = self._fetch()
        if self.converted_name is None:
            return read_source(download, self.architecture, self.source_format)
        converted = os.path.join(os.path.dirname(download), self.converted_name)
        build = factory(self.architecture)
        if os.path.exists(converted):
            model = build(weights=converted, **self.model_config)
        else:
            source = self._fetch(extract=True) if _is_archive(download) else download
            model = build(weights=None, **self.model_config)
            assign_weights(model, read_source(source, self.architecture, self.source_format))
            save_weights(model, converted)
        return Source(f"{self.url} (converted to {converted})", model_tensors(model))

    def _fetch(self, extract=False):
        return keras.utils.get_file(
            os.path.basename(self.url),
            self.url,
            cache_subdir="models",
            file_hash=self.md5,
            cache_dir=self.cache_dir,
            extract=extract,
        )


def _is_archive(path):
    return path.endswith((".tar.gz", ".tgz"))


FACENET_PYTORCH_RELEASE = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"

NAMED_WEIGHTS = {
    "inception_v4": {
        # The authors' slim checkpoint (1001 classes, with the auxiliary head).
        "imagenet": WeightsFile(
            "inception_v4",
            "http://download.tensorflow.org/models/inception_v4_2016_09_09.tar.gz",
            md5=None,
            source_format="slim",
            converted_name="inception_v4_2016_09_09.weights.h5",
            model_config={"aux_logits": True},
        ),
    },
    "inception_resnet_v2": {
        # keras.applications' file; URL and md5 as in keras/src/applications/inception_resnet_v2.py.
        "imagenet": WeightsFile(
            "inception_resnet_v2",
            "https://storage.googleapis.com/tensorflow/keras-applications/inception_resnet_v2/"
            "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5",
            md5="e693bd0210a403b3192acc6073ad2e96",
            source_format="keras-applications",
        ),
    },
    "inception_resnet_v1": {
        name: WeightsFile(
            "inception_resnet_v1",
            FACENET_PYTORCH_RELEASE + f"{stem}.pt",
            md5=None,
            source_format="pytorch",
            converted_name=f"{stem}.weights.h5",
            model_config={"embedding_size": 512},
        )
        for name, stem in [
            ("facenet-vggface2", "20180402-114759-vggface2"),
            ("facenet-casia", "20180408-102900-casia-webface"),
        ]
    },
}
