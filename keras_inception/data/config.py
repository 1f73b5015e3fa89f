"""What a training run reads: the `DataConfig` a recipe's data section becomes."""

from dataclasses import dataclass

from keras_inception.errors import check, coerce_fields, is_int, is_number

SOURCES = ("digits", "folder", "tfrecord", "tfds")
COLOUR_DISTORTIONS = ("fast", "full", "none")


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how the training ones are augmented.

    Attributes:
        source: "digits" (scikit-learn's bundled 8x8 digits), "folder" (one subfolder per class),
            "tfrecord" (ImageNet shards in the TF-slim/TPU layout) or "tfds" (a TFDS dataset
            already prepared on disk).
        train: the training split: a folder, a TFRecord glob, or a TFDS split name ("train").
            Unused for digits.
        validation: the validation split, same forms as `train`; None for no validation data.
            Unused for digits, which takes a fixed, seeded 80/20 split.
        tfds_name: the TFDS dataset name, e.g. "imagenet2012".
        data_dir: the TFDS data_dir holding the prepared dataset; nothing is ever downloaded.
        label_offset: subtracted from stored labels (1 for slim TFRecords, whose labels are
            1..1000, to train 1000 classes).
        num_classes: the class count; required for tfrecord, inferred from the folders for
            folder and digits, from the dataset's metadata for tfds (checked when given).
        colour_distortion: slim's colour modes: "fast" (brightness, saturation), "full" (adds
            hue and contrast, in a random order) or "none".
        shuffle_buffer: examples held for shuffling streamed records (tfrecord, tfds); file
            lists and digits are shuffled whole.
        min_crop_area: smallest fraction of the image area the training crop keeps (slim: 0.05;
            raise it for tiny images such as the digits).
    """

    source: str = "digits"
    train: str | None = None
    validation: str | None = None
    tfds_name: str | None = None
    data_dir: str | None = None
    label_offset: int = 0
    num_classes: int | None = None
    colour_distortion: str = "fast"
    shuffle_buffer: int = 10_000
    min_crop_area: float = 0.05

    def __post_init__(self):
        coerce_fields(self, "DataConfig")
        _check(self.source in SOURCES, "source", f"one of {SOURCES}", self.source)
        _check(
            self.colour_distortion in COLOUR_DISTORTIONS,
            "colour_distortion",
            f"one of {COLOUR_DISTORTIONS}",
            self.colour_distortion,
        )
        _check(
            self.num_classes is None or is_int(self.num_classes, minimum=1),
            "num_classes",
            "a positive integer or None",
            self.num_classes,
        )
        _check(is_int(self.label_offset), "label_offset", "an integer", self.label_offset)
        _check(
            is_int(self.shuffle_buffer, minimum=1),
            "shuffle_buffer",
            "a positive integer",
            self.shuffle_buffer,
        )
        _check(
            is_number(self.min_crop_area) and 0.0 < self.min_crop_area <= 1.0,
            "min_crop_area",
            "a number in (0, 1]",
            self.min_crop_area,
        )


def _check(valid, field, expected, value):
    check(valid, f"DataConfig.{field}", expected, value)
