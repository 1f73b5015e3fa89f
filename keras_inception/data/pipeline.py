"""The two entry points: batched, preprocessed datasets for training, and raw images for
evaluation schemes that crop for themselves."""

from dataclasses import dataclass, field

import tensorflow as tf

from keras_inception.data import augmentation
from keras_inception.data.decoding import SkipCounter, map_images
from keras_inception.data.preprocessing import eval_preprocessing, train_preprocessing
from keras_inception.data.sources import SPLITS, open_source
from keras_inception.errors import is_int


@dataclass(frozen=True)
class DataBundle:
    """What `make_datasets` returns.

    Attributes:
        train: batches of (float32 images in [-1, 1], int32 labels), shuffled and augmented,
            full batches only, one pass per iteration (no repeat). With MixUp or CutMix on, the
            labels are float32 rows [batch, num_classes], one-hot mixed like the images.
        validation: batches of centrally cropped images, in order; None without validation data.
        num_classes: the class count the labels are checked against.
        train_examples, validation_examples: examples listed in each split of this shard,
            counting any that will turn out to be unreadable.
        skipped: the live `SkipCounter` of corrupt or unreadable images both datasets dropped.
        class_names: the names of labels 0, 1...: class folders (in `DataConfig.classes`
            order when given), digits "0".."9", TFDS ClassLabel names; None for TFRecords, or
            where `label_offset` or `num_classes` leave labels unnamed.
        split_files: for a folder source, {"train": [...], "validation": [...]}, the
            (path, label) pairs each split of this shard reads (to keep with the run); else None.

    Each pass over `train` draws its order and augmentation from (seed, epoch, passes since
    the epoch was set), read when the pass starts: call `set_epoch` before an epoch's iterator
    opens and the epoch reads the same data in any process, a resumed one included. MixUp and
    CutMix replay by TensorFlow's global seed instead, drawing alike in every pass (see
    `keras_inception.data.augmentation`).
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    num_classes: int
    train_examples: int
    validation_examples: int
    skipped: SkipCounter
    class_names: tuple[str, ...] | None
    split_files: dict[str, list[tuple[str, int]]] | None
    _pass_seeds: "PassSeeds" = field(repr=False)

    def set_epoch(self, epoch):
        """Key the passes over `train` that start from now on on `epoch`."""
        self._pass_seeds.set_epoch(epoch)


class PassSeeds:
    """The seed of each pass over the training data: a pure function of (seed, epoch, passes
    started since `set_epoch`), held in variables that a tf.data function reads when a pass
    starts, so that it never depends on what ran before in the process."""

    def __init__(self, seed):
        self._seed = tf.constant(seed, tf.int64)
        self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")
        self._passes = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_passes")

    def set_epoch(self, epoch):
        self._epoch.assign(epoch)
        self._passes.assign(0)

    def next_pass(self):
        """In a tf.data function: count a new pass and return its seed, [2] int64."""
        pass_index = self._passes.assign_add(1) - 1
        epoch_seed = tf.stack([self._seed, self._epoch.read_value()])
        return tf.random.experimental.stateless_fold_in(epoch_seed, pass_index)


def make_datasets(config, *, image_size, batch_size, seed=0, shard=None):
    """Build the training and validation pipelines of `config` (a `DataConfig`).

    Everything that can be wrong with the data (missing or empty folders, labels outside
    [0, num_classes), a missing class count) raises ValueError here, before training starts.

    Args:
        image_size: the model's input size, an int or (height, width).
        batch_size: images per batch.
        seed: keys the shuffling and the augmentation, with the epoch (`DataBundle.set_epoch`),
            and alone the subsets drawn once (`validation_split`, `examples_per_class`). The
            augmented pixels are bit-reproducible across processes with op determinism on
            (`tf.config.experimental.enable_op_determinism`); MixUp and CutMix replay only
            with TensorFlow's global seed set too (see `augmentation`).
        shard: optional (num_shards, index): read only this host's share of each split.
    """
    image_size = _check_image_size(image_size)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    _check_seed(seed)
    _check_shard(shard)
    source = open_source(config, seed)
    train = source.split("train", shard=shard)
    if train is None:
        raise ValueError(f"DataConfig.train is not set for source={config.source!r}.")
    if train.examples < batch_size:
        raise ValueError(
            f"The training split has {train.examples} examples, fewer than one batch of "
            f"{batch_size}."
        )
    validation = source.split("validation", shard=shard)
    if source.num_classes < 2:
        raise ValueError(
            f"The training data ({config.train or config.source}) has {source.num_classes} "
            "class: a classifier needs at least two (one subfolder per class)."
        )
    skipped = SkipCounter()
    pass_seeds = PassSeeds(seed)
    # One generator for each image's augmentation, one for the batches': the per-image map runs
    # in parallel, and its draws must not interleave with the batches'.
    generator = tf.random.Generator.from_seed(seed, alg="philox")
    batch_generator = tf.random.Generator.from_seed(seed, alg="philox")
    augment = _image_augmentation(config, image_size, generator)

    def start_pass(_):
        """The records of a pass in its order, with the augmentation's generators set for it."""
        order_seed, augment_seed, batch_seed = tf.unstack(
            tf.random.experimental.stateless_split(pass_seeds.next_pass(), 3)
        )
        resets = [
            each.state.assign(tf.concat([each_seed, [0]], axis=0))  # Philox state
            for each, each_seed in ((generator, augment_seed), (batch_generator, batch_seed))
        ]
        with tf.control_dependencies(resets):
            return train.read(tf.identity(order_seed))

    records = tf.data.Dataset.range(1).flat_map(start_pass)
    train_dataset = map_images(records, train.kind, augment, skipped)
    train_dataset = train_dataset.batch(batch_size, drop_remainder=True)
    if config.mixes_batches:
        mix = augmentation.mix_batches(
            config.mixup, config.cutmix, source.num_classes, batch_generator
        )
        # One batch after another: keras-cv's own random ops then draw in a fixed order.
        train_dataset = train_dataset.map(mix)
    split_files = None
    if train.files is not None:  # a folder: validation is a folder too, or None
        split_files = {
            "train": train.files,
            "validation": [] if validation is None else validation.files,
        }
    validation_dataset = None
    if validation is not None:
        validation_dataset = map_images(
            validation.read(), validation.kind, eval_preprocessing(image_size), skipped
        ).batch(batch_size)
    return DataBundle(
        train=_finish(train_dataset, shard),
        validation=_finish(validation_dataset, shard),
        num_classes=source.num_classes,
        train_examples=train.examples,
        validation_examples=validation.examples if validation is not None else 0,
        skipped=skipped,
        class_names=source.class_names,
        split_files=split_files,
        _pass_seeds=pass_seeds,
    )


def _image_augmentation(config, image_size, generator):
    """Slim's training preprocessing of one image, then RandAugment when it is on."""
    preprocess = train_preprocessing(
        image_size, config.colour_distortion, config.min_crop_area, generator=generator
    )
    if not config.rand_augment:
        return preprocess
    rand_augment = augmentation.rand_augment(config.rand_augment_magnitude, generator)
    return lambda image: rand_augment(preprocess(image))


def load_raw(config, split="validation", *, skipped=None, seed=0):
    """One split of `config` as unbatched (uint8 [height, width, 3] image, int32 label) pairs
    at their stored size, in order, for evaluation that crops for itself.

    Returns the dataset and the class count. Unreadable images are dropped and counted in
    `skipped` (a `SkipCounter`) when one is given. `seed` draws `validation_split` and
    `examples_per_class` as `make_datasets` does: the training run's, to see its split.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    _check_seed(seed)
    source = open_source(config, seed)
    records = source.split(split)
    if records is None:
        raise ValueError(f"DataConfig.{split} is not set for source={config.source!r}.")
    if skipped is None:
        skipped = SkipCounter()
    dataset = map_images(records.read(), records.kind, tf.identity, skipped)
    return dataset, source.num_classes


def _finish(dataset, shard):
    if dataset is None:
        return None
    if shard is not None:
        # Already sharded by host: tf.distribute must not shard it again.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        dataset = dataset.with_options(options)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _check_image_size(image_size):
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(side, int) and side > 0 for side in size):
        raise ValueError(
            f"image_size must be a positive int or (height, width), got {image_size!r}."
        )
    return size


def _check_seed(seed):
    if not is_int(seed, minimum=0):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")


def _check_shard(shard):
    if shard is None:
        return
    if (
        len(shard) != 2
        or not all(isinstance(value, int) for value in shard)
        or not 0 <= shard[1] < shard[0]
    ):
        raise ValueError(
            f"shard must be (num_shards, index) with 0 <= index < num_shards, got {shard!r}."
        )
