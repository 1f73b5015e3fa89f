"""What a training run reads: the `DataConfig` a recipe's data section becomes."""

from dataclasses import dataclass

from keras_inception.errors import check, coerce_fields, is_int, is_number

SOURCES = ("digits", "folder", "tfrecord", "tfds")
COLOUR_DISTORTIONS = ("fast", "full", "none")
SUBSET_SOURCES = ("digits", "folder")  # those that `classes` and `examples_per_class` apply to


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
        validation_split: for a folder with no `validation` folder, the fraction of each class's
            images held out for validation, drawn from the run's seed (the same files in every
            process, run and resume). None: no split.
        classes: keep only these classes, labelled in this order: subfolder names for folder,
            "0".."9" for digits (to pre-train on some digits and fine-tune on the others); the
            class count is then theirs.
        examples_per_class: keep at most this many training images of each class, drawn from
            the run's seed like the split (few-shot fine-tuning); validation keeps all its own.
        rand_augment: apply keras-cv's RandAugment to each training image after slim's
            preprocessing, at strength `rand_augment_magnitude` in [0, 1].
        mixup, cutmix: the Beta alpha of keras-cv's MixUp and CutMix on each training batch, 0 for
            off; with either on, training labels are mixed float32 one-hot rows, and with both
            each batch gets one of the two.
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
    validation_split: float | None = None
    classes: tuple[str, ...] | None = None
    examples_per_class: int | None = None
    rand_augment: bool = False
    rand_augment_magnitude: float = 0.5
    mixup: float = 0.0
    cutmix: float = 0.0

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
        self._check_subsets()
        self._check_augmentation()

    def _check_subsets(self):
        _check(
            self.classes is None or 0 < len(set(self.classes)) == len(self.classes),
            "classes",
            "a list of distinct class names or None",
            self.classes,
        )
        split = self.validation_split
        _check(split is None or 0.0 < split < 1.0, "validation_split", "in (0, 1)", split)
        if split is not None:
            _check(
                self.source == "folder",
                "validation_split",
                "None unless source='folder' (digits keep their fixed split)",
                split,
            )
            _check(
                self.validation is None,
                "validation_split",
                f"None when DataConfig.validation is set ({self.validation!r})",
                split,
            )
        _check(
            self.examples_per_class is None or is_int(self.examples_per_class, minimum=1),
            "examples_per_class",
            "a positive integer or None",
            self.examples_per_class,
        )
        for field in ("classes", "examples_per_class"):
            _check(
                getattr(self, field) is None or self.source in SUBSET_SOURCES,
                field,
                f"None unless source is one of {SUBSET_SOURCES}",
                getattr(self, field),
            )

    def _check_augmentation(self):
        _check(
            0.0 <= self.rand_augment_magnitude <= 1.0,
            "rand_augment_magnitude",
            "a number in [0, 1]",
            self.rand_augment_magnitude,
        )
        for field in ("mixup", "cutmix"):
            _check(
                getattr(self, field) >= 0.0,
                field,
                "a Beta alpha >= 0 (0: off)",
                getattr(self, field),
            )

    @property
    def mixes_batches(self):
        """Whether training batches are mixed (MixUp or CutMix), their labels then one-hot."""
        return self.mixup > 0 or self.cutmix > 0


def _check(valid, field, expected, value):
    check(valid, f"DataConfig.{field}", expected, value)
