"""The four places images come from, each read into the same form: a `Split` of
`(payload, int32 label)` pairs, checked up front so that bad data fails before training starts.

Labels are the stored ones minus `DataConfig.label_offset` and must lie in [0, num_classes).
A split is read in stored order, or shuffled by a seed tensor: the order is a pure function of
that seed, so a training pass keyed on (seed, epoch) reads the same order in any process.
The subsets a run draws (`validation_split`, `examples_per_class`) are pure functions of the
run's seed and the sorted file lists, for the same reason.
"""

import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from keras_inception.data.config import SUBSET_SOURCES
from keras_inception.data.decoding import ENCODED, PATH, PIXELS
from keras_inception.errors import require

SPLITS = ("train", "validation")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
DIGITS_SPLIT_SEED = 0  # fixed, so every run validates on the same digits whatever its seed
DIGITS_VALIDATION_FRACTION = 0.2
# TFDS reshuffles its files at each pass from this seed with state it keeps in the process: the
# one part of a shuffled order not keyed on the pass's seed.
TFDS_FILE_SHUFFLE_SEED = 0
# What a seeded subset is drawn for: each its own stream, so one does not move the other.
_HOLD_OUT, _KEEP = 0, 1
TFRECORD_IMAGE = "image/encoded"
TFRECORD_LABEL = "image/class/label"
_TFRECORD_READERS = 16

stateless_shuffle = tf.random.experimental.stateless_shuffle
stateless_split = tf.random.experimental.stateless_split


@dataclass(frozen=True)
class Split:
    """One split before decoding: `(payload, int32 label)` pairs whose payloads are `kind`
    (a file path, encoded image bytes or uint8 pixels), and how many there are.

    `read(seed=None)` gives them as a dataset, in stored order or, with a [2] int64 seed
    tensor (it may be computed inside a tf.data function), in an order drawn from that seed.
    `files`: for a split of image files, the `(path, label)` pairs it reads; else None.
    """

    read: Callable[..., tf.data.Dataset]
    examples: int
    kind: str
    files: list | None = None


def open_source(config, seed=0):
    """The source `config.source` names, with its class count resolved and checked. Its
    `class_names` are the names of labels 0, 1... (None where the data has none); `seed` draws
    the subsets of the sources that take them (`validation_split`, `examples_per_class`)."""
    if config.source in SUBSET_SOURCES:
        return _SOURCES[config.source](config, seed)
    return _SOURCES[config.source](config)


class DigitsSource:
    """scikit-learn's bundled 8x8 digits (no download) as uint8 RGB, split 80/20 with a
    fixed seed, stratified by class; `classes` and `examples_per_class` then take from that
    split, so the validation digits of a class are the same whichever are kept."""

    def __init__(self, config, seed):
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        grey = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
        self._images = np.repeat(grey[..., np.newaxis], 3, axis=-1)
        kept = _select_classes(
            config.classes, [str(digit) for digit in digits.target_names], "the digits"
        )
        label_of = {int(name): label for label, name in enumerate(kept)}  # the others: -1
        self._labels = np.array([label_of.get(digit, -1) for digit in digits.target])
        self.num_classes = _resolve_num_classes(config, len(kept), "the digits")
        self.class_names = _label_names(kept, config, self.num_classes)
        self._offset = config.label_offset
        train, validation = train_test_split(
            np.arange(len(self._labels)),
            test_size=DIGITS_VALIDATION_FRACTION,
            stratify=digits.target,
            random_state=DIGITS_SPLIT_SEED,
        )
        train, validation = (indices[self._labels[indices] >= 0] for indices in (train, validation))
        if config.examples_per_class is not None:
            chosen = np.zeros(len(self._labels), bool)
            for label, name in enumerate(kept):
                of_class = train[self._labels[train] == label]
                chosen[_draw(of_class, config.examples_per_class, seed, _KEEP, name)[0]] = True
            train = train[chosen[train]]
        self._indices = {"train": train, "validation": validation}

    def split(self, name, *, shard=None):
        indices = _take_shard(self._indices[name], shard)
        labels = (self._labels[indices] - self._offset).astype(np.int32)
        return _in_memory_split(self._images[indices], labels, PIXELS)


class FolderSource:
    """A folder with one subfolder per class (searched recursively, like
    `keras.utils.image_dataset_from_directory`); labels follow the sorted subfolder names, or
    the order of `classes`. Every training class needs an image."""

    def __init__(self, config, seed):
        root = config.train or config.validation
        if root is None:
            raise ValueError("DataConfig.train (a folder with one subfolder per class) is not set.")
        self._folders = _class_folders(root)
        self._kept = _select_classes(config.classes, self._folders, f"the class folders of {root}")
        self.num_classes = _resolve_num_classes(
            config, len(self._kept), f"the {len(self._kept)} class folders of {root}"
        )
        self.class_names = _label_names(self._kept, config, self.num_classes)
        self._config = config
        train = validation = None
        if config.train is not None:
            train = self._files_by_class(config.train, training=True)
        if config.validation is not None:
            validation = self._files_by_class(config.validation, training=False)
        if config.validation_split is not None:
            train, validation = _hold_out(train, config.validation_split, seed, config.train)
        if config.examples_per_class is not None:
            train = {
                name: _draw(files, config.examples_per_class, seed, _KEEP, name)[0]
                for name, files in train.items()
            }
        self._files = {"train": self._labelled(train), "validation": self._labelled(validation)}

    def split(self, name, *, shard=None):
        files = self._files[name]
        if files is None:
            return None
        files = _take_shard(files, shard)
        paths = np.array([path for path, _ in files])
        labels = np.array([label for _, label in files], np.int32)
        return _in_memory_split(paths, labels, PATH, files=files)

    def _files_by_class(self, root, *, training):
        """{class name: its sorted image files} under `root`; a training folder needs images in
        every class folder, any other at least one image."""
        unknown = sorted(set(_class_folders(root)) - set(self._folders))
        if unknown:
            raise ValueError(f"{root} has class folders that the training folder lacks: {unknown}.")
        by_class = {name: _image_files(os.path.join(root, name)) for name in self._kept}
        kinds = ", ".join(IMAGE_EXTENSIONS)
        empty = [os.path.join(root, name) for name, files in by_class.items() if not files]
        if training and empty:
            raise ValueError(
                f"No images ({kinds}) found in the class folders {', '.join(empty)}: every class "
                "needs images to train on (remove the folder, or leave it out of "
                "DataConfig.classes)."
            )
        if not any(by_class.values()):
            raise ValueError(f"No images ({kinds}) found in the class folders of {root}.")
        return by_class

    def _labelled(self, by_class):
        """The `(path, label)` pairs of `{class name: files}`, class after class."""
        if by_class is None:
            return None
        offset = self._config.label_offset
        return [
            (path, label - offset)
            for label, name in enumerate(self._kept)
            for path in by_class[name]
        ]


class TFRecordSource:
    """ImageNet TFRecord shards in the TF-slim/TPU layout: JPEG bytes in `image/encoded`,
    the class in `image/class/label` (1..1000 for ImageNet, 0 being slim's background)."""

    def __init__(self, config):
        if config.num_classes is None:
            raise ValueError(
                "DataConfig.num_classes is required for TFRecords: 1000 with label_offset=1 for "
                "slim's ImageNet shards (labels 1..1000), or 1001 with label_offset=0 to keep "
                "slim's background class."
            )
        self.num_classes = config.num_classes
        self.class_names = None  # the shards hold label numbers only
        self._config = config

    def split(self, name, *, shard=None):
        pattern = getattr(self._config, name)
        if pattern is None:
            return None
        files = sorted(tf.io.gfile.glob(pattern))
        if not files:
            raise ValueError(f"No TFRecord files match {pattern!r}.")
        files = _take_shard(files, shard)
        if not files:
            raise ValueError(f"{pattern!r} has fewer files than the {shard[0]} input shards.")
        examples = self._check_labels(files, pattern)
        files = tf.constant(files)

        def read(seed=None):
            """Records file after file; shuffled: the files in an order drawn from `seed`, then
            blocks of records."""
            if seed is not None:
                files_seed, records_seed = tf.unstack(stateless_split(seed))
            ordered = files if seed is None else stateless_shuffle(files, files_seed)
            dataset = tf.data.Dataset.from_tensor_slices(ordered).interleave(
                tf.data.TFRecordDataset,
                cycle_length=min(len(files), _TFRECORD_READERS),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            dataset = dataset.map(self._parse, num_parallel_calls=tf.data.AUTOTUNE)
            if seed is None:
                return dataset
            return _shuffle_blocks(dataset, self._config.shuffle_buffer, records_seed)

        return Split(read, examples, ENCODED)

    def _parse(self, record):
        features = tf.io.parse_single_example(
            record,
            {
                TFRECORD_IMAGE: tf.io.FixedLenFeature([], tf.string),
                TFRECORD_LABEL: tf.io.FixedLenFeature([], tf.int64),
            },
        )
        label = tf.cast(features[TFRECORD_LABEL] - self._config.label_offset, tf.int32)
        return features[TFRECORD_IMAGE], label

    def _check_labels(self, files, pattern):
        """Read only the label of every record (cheap beside decoding) and check its range;
        return the number of records."""
        spec = {TFRECORD_LABEL: tf.io.FixedLenFeature([], tf.int64)}
        labels = tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE).batch(4096)
        labels = labels.map(lambda records: tf.io.parse_example(records, spec)[TFRECORD_LABEL])
        try:
            batches = [batch.numpy() for batch in labels]
        except tf.errors.OpError as error:
            raise ValueError(
                f"Cannot read '{TFRECORD_LABEL}' from the TFRecords {pattern!r}: {error.message}"
            ) from None
        if not batches:
            raise ValueError(f"The TFRecords {pattern!r} hold no records.")
        stored = np.concatenate(batches)
        _check_label_range(
            int(stored.min()), int(stored.max()), self._config, self.num_classes, repr(pattern)
        )
        return len(stored)


class TFDSSource:
    """A TFDS dataset already prepared in `data_dir` (this package never downloads); images
    are read undecoded so they go through the same robust decoding as the other sources."""

    def __init__(self, config):
        if not config.tfds_name:
            raise ValueError("DataConfig.tfds_name is required for source='tfds'.")
        tfds = require("tensorflow_datasets", "source='tfds'", "tensorflow-datasets")
        self._tfds = tfds
        where = f"TFDS dataset {config.tfds_name!r} in data_dir={config.data_dir!r}"
        not_prepared = ValueError(
            f"The {where} is not prepared. Prepare it first (for example `tfds build "
            f"{config.tfds_name} --data_dir=...` with any manual files in place); "
            "keras-inception never downloads data."
        )
        try:
            self._builder = tfds.builder(config.tfds_name, data_dir=config.data_dir)
        except tfds.core.registered.DatasetNotFoundError:
            raise not_prepared from None
        if not self._builder.is_prepared():
            raise not_prepared
        info = self._builder.info
        if not info.supervised_keys:
            raise ValueError(f"The {where} has no (image, label) supervised keys.")
        self._image_key, label_key = info.supervised_keys
        label_feature = info.features[label_key]
        if not isinstance(label_feature, tfds.features.ClassLabel):
            raise ValueError(
                f"The {where} has no class labels ({label_key!r} is not a ClassLabel)."
            )
        self.num_classes = _resolve_num_classes(config, label_feature.num_classes, f"the {where}")
        self.class_names = _label_names(label_feature.names, config, self.num_classes)
        self._config = config

    def split(self, name, *, shard=None):
        split = getattr(self._config, name)
        if split is None:
            return None
        if shard is not None:
            split = self._tfds.even_splits(split, shard[0])[shard[1]]
        try:
            examples = self._builder.info.splits[split].num_examples
        except (KeyError, ValueError):
            raise ValueError(
                f"TFDS dataset {self._config.tfds_name!r} has no split {split!r}; it has "
                f"{sorted(self._builder.info.splits)}."
            ) from None
        offset = self._config.label_offset

        def records(shuffle_files):
            dataset = self._builder.as_dataset(
                split=split,
                as_supervised=True,
                shuffle_files=shuffle_files,
                decoders={self._image_key: self._tfds.decode.SkipDecoding()},
                read_config=self._tfds.ReadConfig(shuffle_seed=TFDS_FILE_SHUFFLE_SEED),
            )
            return dataset.map(lambda image, label: (image, tf.cast(label - offset, tf.int32)))

        ordered, shuffled_files = records(False), records(True)

        def read(seed=None):
            """Shuffled: TFDS's own file shuffling, then blocks of records keyed on `seed`."""
            if seed is None:
                return ordered
            return _shuffle_blocks(shuffled_files, self._config.shuffle_buffer, seed)

        return Split(read, examples, ENCODED)


_SOURCES = {
    "digits": DigitsSource,
    "folder": FolderSource,
    "tfrecord": TFRecordSource,
    "tfds": TFDSSource,
}


def _resolve_num_classes(config, stored_classes, where):
    """The class count: `config.num_classes`, else what stored labels 0..stored_classes-1 give
    after the offset; checked against those labels either way."""
    num_classes = config.num_classes
    if num_classes is None:
        num_classes = stored_classes - config.label_offset
    _check_label_range(0, stored_classes - 1, config, num_classes, where)
    return num_classes


def _check_label_range(low, high, config, num_classes, where):
    offset = config.label_offset
    if low - offset < 0 or high - offset >= num_classes:
        raise ValueError(
            f"Labels of {where} run from {low} to {high}; minus label_offset={offset} they fall "
            f"outside [0, {num_classes}). Set DataConfig.label_offset and num_classes to match "
            "the data (slim's ImageNet TFRecords: labels 1..1000, so label_offset=1 with "
            "num_classes=1000, or label_offset=0 with num_classes=1001)."
        )


def _select_classes(wanted, available, where):
    """The class names in label order: `wanted` (`DataConfig.classes`), each checked against
    `available`, or all of `available` when None."""
    if wanted is None:
        return tuple(available)
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise ValueError(
            f"DataConfig.classes names {unknown}, not among {where}: {list(available)}."
        )
    return wanted


def _label_names(names, config, num_classes):
    """`names` (of stored labels 0, 1...) as the names of labels 0..num_classes-1, or None
    where `label_offset` or a larger `num_classes` leave labels without one."""
    if config.label_offset != 0 or len(names) != num_classes:
        return None
    return tuple(names)


def _draw(items, count, seed, purpose, class_name):
    """`count` of `items` (a class's sorted files or indices) and the others, each in stored
    order, drawn from numpy's `default_rng` keyed on (seed, purpose, class name) alone: the same
    ones in every process, run and resume, whichever other classes are kept."""
    order = np.random.default_rng([seed, purpose, zlib.crc32(class_name.encode())]).permutation(
        len(items)
    )
    chosen = np.zeros(len(items), bool)
    chosen[order[:count]] = True
    return (
        [item for item, kept in zip(items, chosen) if kept],
        [item for item, kept in zip(items, chosen) if not kept],
    )


def _hold_out(by_class, fraction, seed, root):
    """Split `{class name: files}` into training and validation ones, stratified:
    max(1, round(n * fraction)) of each class's n files held out, at least one kept to train."""
    train, validation = {}, {}
    for name, files in by_class.items():
        if len(files) < 2:
            raise ValueError(
                f"Class folder {os.path.join(root, name)} has one image: "
                "DataConfig.validation_split needs at least 2 in each class, one to train on and "
                "one to validate on."
            )
        held = min(len(files) - 1, max(1, round(len(files) * fraction)))
        validation[name], train[name] = _draw(files, held, seed, _HOLD_OUT, name)
    return train, validation


def _class_folders(root):
    """The sorted class subfolders of `root`, hidden ones (".ipynb_checkpoints") left out."""
    if not tf.io.gfile.isdir(root):
        raise ValueError(f"Image folder {root} does not exist or is not a folder.")
    names = sorted(name.rstrip("/") for name in tf.io.gfile.listdir(root))
    names = [
        name
        for name in names
        if not name.startswith(".") and tf.io.gfile.isdir(os.path.join(root, name))
    ]
    if not names:
        raise ValueError(f"Image folder {root} has no class subfolders (one per class expected).")
    return names


def _image_files(folder):
    return sorted(
        os.path.join(directory, name)
        for directory, _, files in tf.io.gfile.walk(folder)
        for name in files
        if name.lower().endswith(IMAGE_EXTENSIONS)
    )


def _take_shard(items, shard):
    """Every `num_shards`-th item starting at `index`: this host's share of a split."""
    if shard is None:
        return items
    num_shards, index = shard
    return items[index::num_shards]


def _in_memory_split(payloads, labels, kind, files=None):
    """A split held in memory, shuffled as a whole (each permutation equally likely)."""
    payloads, labels = tf.constant(payloads), tf.constant(labels)

    def read(seed=None):
        if seed is None:
            return tf.data.Dataset.from_tensor_slices((payloads, labels))
        order = stateless_shuffle(tf.range(tf.shape(labels, out_type=tf.int64)[0]), seed)
        return tf.data.Dataset.from_tensor_slices(
            (tf.gather(payloads, order), tf.gather(labels, order))
        )

    return Split(read, len(labels), kind, files)


def _shuffle_blocks(dataset, block_size, seed):
    """Shuffle a stream within consecutive blocks of `block_size` records, each block in an order
    drawn from `seed` and the block's index. (`Dataset.shuffle`'s sliding buffer would mix
    further, but it takes no seed computed in a tf.data function once a global seed of 0 is set.)"""

    def shuffle(index, records):
        size = tf.shape(records[1], out_type=tf.int64)[0]
        order = stateless_shuffle(
            tf.range(size), tf.random.experimental.stateless_fold_in(seed, index)
        )
        return tf.nest.map_structure(lambda values: tf.gather(values, order), records)

    return dataset.batch(block_size).enumerate().map(shuffle).unbatch()
