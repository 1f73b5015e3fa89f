"""The data pipeline: each source reads a small dataset the test writes, bad data fails early."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_inception.data import DataConfig, eval_preprocessing, load_raw, make_datasets
from keras_inception.data.sources import open_source
from keras_inception.errors import ConfigError

SIZE = 75


def labels_of(dataset):
    return np.concatenate([labels.numpy() for _, labels in dataset])


def test_digits_batches_shapes_range_and_classes():
    bundle = make_datasets(DataConfig(), image_size=SIZE, batch_size=64, seed=3)
    assert bundle.num_classes == 10
    assert bundle.train_examples + bundle.validation_examples == 1797
    assert bundle.validation_examples == pytest.approx(0.2 * 1797, abs=1)
    images, labels = next(iter(bundle.train))
    assert images.shape == (64, SIZE, SIZE, 3) and images.dtype == tf.float32
    assert labels.dtype == tf.int32
    assert -1.0 <= float(tf.reduce_min(images)) < 0.0 < float(tf.reduce_max(images)) <= 1.0
    assert sum(1 for _ in bundle.train) == bundle.train_examples // 64  # full batches only
    validation_labels = labels_of(bundle.validation)
    assert len(validation_labels) == bundle.validation_examples
    assert set(validation_labels) == set(range(10))
    assert bundle.skipped.count == 0


def test_shards_split_the_examples_between_hosts():
    bundles = [
        make_datasets(DataConfig(), image_size=SIZE, batch_size=32, shard=(2, index))
        for index in range(2)
    ]
    assert sum(bundle.train_examples for bundle in bundles) == 1437
    assert sum(bundle.validation_examples for bundle in bundles) == 360
    assert sum(len(labels_of(bundle.validation)) for bundle in bundles) == 360
    with pytest.raises(ValueError, match="shard must be"):
        make_datasets(DataConfig(), image_size=SIZE, batch_size=32, shard=(2, 2))


def test_digits_split_is_fixed_whatever_the_training_seed():
    first = make_datasets(DataConfig(), image_size=SIZE, batch_size=32, seed=0)
    second = make_datasets(DataConfig(), image_size=SIZE, batch_size=32, seed=1)
    np.testing.assert_array_equal(labels_of(first.validation), labels_of(second.validation))
    train_raw, _ = load_raw(DataConfig(), "train")
    validation_raw, num_classes = load_raw(DataConfig(), "validation")
    train_images = {image.numpy().tobytes() for image, _ in train_raw}
    validation_images = [image.numpy() for image, _ in validation_raw]
    assert num_classes == 10
    assert validation_images[0].shape == (8, 8, 3) and validation_images[0].dtype == np.uint8
    # Mostly disjoint: a few digits are pixel-identical duplicates of each other.
    shared = sum(image.tobytes() in train_images for image in validation_images)
    assert shared < 0.02 * len(validation_images)


# Class colours, so that a label can be checked from the pixels of its image.
COLOURS = {"ants": (220, 40, 40), "bees": (40, 40, 220), "cats": (40, 220, 40)}


def solid(colour, height, width):
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, 3)).copy()


def write_jpeg(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_jpeg(image, quality=95).numpy())


@pytest.fixture
def image_folder(tmp_path):
    """train/ with 3 class folders of JPEGs of varied sizes, one corrupt file and one stray
    non-image; validation/ with 2 of the classes."""
    sizes = [(40, 30), (30, 50), (64, 64)]
    for name, colour in COLOURS.items():
        for i, (height, width) in enumerate(sizes):
            write_jpeg(tmp_path / "train" / name / f"{i}.jpg", solid(colour, height, width))
        write_jpeg(tmp_path / "validation" / name / "0.jpg", solid(colour, 48, 36))
    (tmp_path / "train" / "bees" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "train" / "bees" / "notes.txt").write_text("not an image, not listed")
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()  # hidden: not a class
    return tmp_path


def label_matches_colour(image, label):
    mean = image.reshape(-1, 3).mean(axis=0)
    return np.argmax(mean) == np.argmax(COLOURS[sorted(COLOURS)[label]])


def test_folder_skips_and_counts_a_corrupt_image_and_labels_follow_sorted_folders(image_folder):
    config = DataConfig(
        source="folder",
        train=str(image_folder / "train"),
        validation=str(image_folder / "validation"),
    )
    bundle = make_datasets(config, image_size=SIZE, batch_size=1, seed=0)
    assert bundle.num_classes == 3
    assert (bundle.train_examples, bundle.validation_examples) == (10, 3)  # broken.jpg listed
    assert len(labels_of(bundle.train)) == 9
    assert bundle.skipped.count == 1
    assert sorted(labels_of(bundle.validation)) == [0, 1, 2]
    assert bundle.skipped.count == 1
    (broken,) = bundle.skipped.files  # named, once
    assert broken.endswith("broken.jpg") and broken in bundle.skipped.report()

    skipped = type(bundle.skipped)()
    raw, _ = load_raw(config, "train", skipped=skipped)
    pairs = [(image.numpy(), int(label)) for image, label in raw]
    assert sorted(label for _, label in pairs) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert all(label_matches_colour(image, label) for image, label in pairs)
    assert skipped.count == 1


def test_load_raw_gives_stored_sizes_as_uint8_rgb(tmp_path):
    PIL_Image = pytest.importorskip("PIL.Image")
    folder = tmp_path / "classes"
    write_jpeg(folder / "a" / "photo.jpg", solid(COLOURS["ants"], 37, 23))
    grey = np.full((21, 17, 1), 99, np.uint8)
    (folder / "a" / "grey.png").write_bytes(tf.io.encode_png(grey).numpy())
    rgba = np.concatenate([solid(COLOURS["bees"], 12, 30), np.full((12, 30, 1), 7, np.uint8)], -1)
    (folder / "b" / "alpha.png").parent.mkdir()
    (folder / "b" / "alpha.png").write_bytes(tf.io.encode_png(rgba).numpy())
    PIL_Image.fromarray(solid(COLOURS["cats"], 9, 14)).save(folder / "b" / "bitmap.bmp")
    PIL_Image.fromarray(solid(COLOURS["cats"], 16, 8)).save(folder / "b" / "still.gif")

    raw, num_classes = load_raw(DataConfig(source="folder", validation=str(folder)))
    images = {(image.shape[:2], int(label)): image.numpy() for image, label in raw}
    assert num_classes == 2
    assert set(images) == {((37, 23), 0), ((21, 17), 0), ((12, 30), 1), ((9, 14), 1), ((16, 8), 1)}
    assert all(image.dtype == np.uint8 and image.shape[2] == 3 for image in images.values())
    np.testing.assert_array_equal(images[((21, 17), 0)], np.full((21, 17, 3), 99, np.uint8))
    np.testing.assert_array_equal(images[((12, 30), 1)], rgba[..., :3])
    np.testing.assert_array_equal(images[((9, 14), 1)], solid(COLOURS["cats"], 9, 14))


def test_missing_or_empty_folders_fail_before_training(tmp_path):
    def build(train, validation=None):
        config = DataConfig(source="folder", train=str(train), validation=validation)
        return make_datasets(config, image_size=SIZE, batch_size=1)

    with pytest.raises(ValueError, match="does not exist"):
        build(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class subfolders"):
        build(tmp_path / "empty")
    (tmp_path / "imageless" / "ants").mkdir(parents=True)
    (tmp_path / "imageless" / "ants" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="No images"):
        build(tmp_path / "imageless")
    write_jpeg(tmp_path / "train" / "ants" / "0.jpg", solid(COLOURS["ants"], 8, 8))
    write_jpeg(tmp_path / "validation" / "wasps" / "0.jpg", solid(COLOURS["ants"], 8, 8))
    with pytest.raises(ValueError, match="wasps"):
        build(tmp_path / "train", str(tmp_path / "validation"))


def write_slim_shard(path, images_and_labels):
    """A TFRecord shard in TF-slim's ImageNet layout."""

    def feature(value):
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    with tf.io.TFRecordWriter(str(path)) as writer:
        for image, label in images_and_labels:
            features = {
                "image/encoded": tf.io.encode_jpeg(image).numpy(),
                "image/format": b"JPEG",
                "image/class/label": label,
                "image/height": image.shape[0],
                "image/width": image.shape[1],
            }
            example = tf.train.Example(
                features=tf.train.Features(feature={k: feature(v) for k, v in features.items()})
            )
            writer.write(example.SerializeToString())


@pytest.fixture
def slim_shards(tmp_path):
    """Shards with slim's 1-based labels 1..3; the colour of each image says its class."""
    names = sorted(COLOURS)
    stored = [1, 2, 3, 3, 1, 2]
    for split, count in (("train", 2), ("validation", 1)):
        for shard in range(count):
            write_slim_shard(
                tmp_path / f"{split}-{shard:05d}-of-{count:05d}",
                [
                    (solid(COLOURS[names[label - 1]], 20 + i, 30), label)
                    for i, label in enumerate(stored)
                ],
            )
    return tmp_path, stored


def test_tfrecord_slim_layout_with_label_offset(slim_shards):
    folder, stored = slim_shards
    config = DataConfig(
        source="tfrecord",
        train=str(folder / "train-*"),
        validation=str(folder / "validation-*"),
        label_offset=1,
        num_classes=3,
    )
    raw, num_classes = load_raw(config)
    pairs = [(image.numpy(), int(label)) for image, label in raw]
    assert num_classes == 3
    assert [label for _, label in pairs] == [label - 1 for label in stored]
    assert [image.shape[0] for image, _ in pairs] == [20 + i for i in range(len(stored))]
    assert all(label_matches_colour(image, label) for image, label in pairs)

    bundle = make_datasets(config, image_size=SIZE, batch_size=4, seed=0)
    assert (bundle.train_examples, bundle.validation_examples) == (12, 6)
    assert bundle.class_names is None and bundle.split_files is None  # label numbers only
    assert sorted(labels_of(bundle.train)) == sorted(label - 1 for label in 2 * stored)
    assert bundle.skipped.count == 0
    # Hosts read whole files: one of the two training shards each.
    train_only = dataclasses.replace(config, validation=None)
    half = make_datasets(train_only, image_size=SIZE, batch_size=4, shard=(2, 1))
    assert (half.train_examples, half.validation) == (6, None)
    assert len(labels_of(half.train)) == 4  # one full batch of the shard's 6 records
    with pytest.raises(ValueError, match="fewer files than the 3 input shards"):
        make_datasets(train_only, image_size=SIZE, batch_size=4, shard=(3, 2))

    with pytest.raises(ValueError, match="DataConfig.num_classes is required"):
        make_datasets(dataclasses.replace(config, num_classes=None), image_size=SIZE, batch_size=4)
    with pytest.raises(ValueError, match="No TFRecord files"):
        make_datasets(
            DataConfig(source="tfrecord", train=str(folder / "test-*"), num_classes=3),
            image_size=SIZE,
            batch_size=4,
        )


def test_tfrecord_label_out_of_range_fails_before_iteration(slim_shards):
    folder, _ = slim_shards
    config = DataConfig(source="tfrecord", train=str(folder / "train-*"), num_classes=3)
    with pytest.raises(ValueError, match=r"from 1 to 3.*label_offset=0.*\[0, 3\)"):
        make_datasets(config, image_size=SIZE, batch_size=4)
    with pytest.raises(ValueError, match=r"label_offset=0"):
        load_raw(DataConfig(source="tfrecord", validation=config.train, num_classes=3))
    # With slim's background class kept, the same files are valid.
    make_datasets(dataclasses.replace(config, num_classes=4), image_size=SIZE, batch_size=4)


def test_eval_preprocessing_is_slims_exact_central_crop():
    rng = np.random.default_rng(0)
    for height, width in ((16, 16), (32, 24), (40, 57)):
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        # Slim's central_crop: the same integer margin on both sides of each axis.
        top, left = int((height - height * 0.875) / 2), int((width - width * 0.875) / 2)
        crop = image[top : height - top, left : width - left]
        # Resizing to the crop's own size leaves the crop's pixels exactly as they were.
        result = eval_preprocessing(crop.shape[:2])(tf.constant(image)).numpy()
        np.testing.assert_allclose(result, crop / 127.5 - 1.0, atol=1e-6)


def test_the_central_crop_is_tensorflows_to_the_bit_on_images_and_batches():
    """Our float32 arithmetic (export formats take no float64) cuts where tf.image.central_crop's
    float64 does, for sizes from 1 pixel up."""
    from keras_inception.data.preprocessing import central_crop

    rng = np.random.default_rng(0)
    for height in (*range(1, 40), 299, 333, 1001, 4001):
        image = rng.integers(0, 256, (height, int(rng.integers(1, 600)), 3), dtype=np.uint8)
        expected = tf.image.resize(tf.image.central_crop(image, 0.875), (SIZE, SIZE)).numpy()
        np.testing.assert_array_equal(central_crop(image, (SIZE, SIZE)).numpy(), expected)
        np.testing.assert_array_equal(central_crop(image[None], (SIZE, SIZE)).numpy()[0], expected)


def test_bad_config_values_name_the_field():
    with pytest.raises(ValueError, match="DataConfig.source"):
        DataConfig(source="imagenet")
    with pytest.raises(ValueError, match="DataConfig.colour_distortion"):
        DataConfig(colour_distortion="vivid")
    with pytest.raises(ValueError, match="DataConfig.min_crop_area"):
        DataConfig(min_crop_area=0.0)
    with pytest.raises(ValueError, match="num_classes"):
        make_datasets(DataConfig(num_classes=9), image_size=SIZE, batch_size=4)


def test_train_preprocessing_colour_modes():
    from keras_inception.data import train_preprocessing

    image = tf.constant(solid((200, 120, 40), 50, 40))
    expected = np.array((200, 120, 40)) / 127.5 - 1.0
    plain = train_preprocessing(
        (SIZE, SIZE), colour_distortion="none", generator=tf.random.Generator.from_seed(1)
    )
    for _ in range(3):  # crop, resize and flip keep a solid colour as it is
        result = plain(image).numpy()
        assert result.shape == (SIZE, SIZE, 3)
        np.testing.assert_allclose(result, np.broadcast_to(expected, result.shape), atol=1e-5)
    for mode in ("fast", "full"):
        distort = train_preprocessing(
            (SIZE, SIZE), colour_distortion=mode, generator=tf.random.Generator.from_seed(1)
        )
        results = [distort(image).numpy() for _ in range(4)]
        assert all(-1.0 <= result.min() and result.max() <= 1.0 for result in results)
        assert max(np.abs(result - expected).max() for result in results) > 0.05


def test_fast_saturation_matches_tensorflows_hsv_saturation():
    from keras_inception.data.preprocessing import adjust_saturation

    rng = np.random.default_rng(1)
    # Brightness runs before saturation unclipped, so values outside [0, 1] occur; grey, black
    # and all-negative pixels are the edge cases of the HSV round trip.
    image = rng.uniform(-0.2, 1.2, (32, 32, 3)).astype(np.float32)
    image[0], image[1], image[2] = 0.4, 0.0, -0.1
    for factor in (0.0, 0.5, 0.93, 1.5, 4.0):
        np.testing.assert_allclose(
            adjust_saturation(tf.constant(image), factor).numpy(),
            tf.image.adjust_saturation(image, factor).numpy(),
            atol=2e-6,
        )


def test_tfds_dataset_prepared_on_disk(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")

    class TinyShapes(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """Solid-colour images of varied heights, the class being the colour."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(names=sorted(COLOURS)),
                }
            )
            return tfds.core.DatasetInfo(
                builder=self, features=features, supervised_keys=("image", "label")
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(6), "validation": self._generate_examples(3)}

        def _generate_examples(self, count):
            for i in range(count):
                name = sorted(COLOURS)[i % 3]
                yield i, {"image": solid(COLOURS[name], 10 + i, 12), "label": name}

    TinyShapes(data_dir=str(tmp_path)).download_and_prepare()
    config = DataConfig(
        source="tfds",
        tfds_name="tiny_shapes",
        data_dir=str(tmp_path),
        train="train",
        validation="validation",
    )
    raw, num_classes = load_raw(config)
    pairs = [(image.numpy(), int(label)) for image, label in raw]
    assert num_classes == 3
    assert sorted(image.shape for image, _ in pairs) == [(10, 12, 3), (11, 12, 3), (12, 12, 3)]
    assert all(label_matches_colour(image, label) for image, label in pairs)
    bundle = make_datasets(config, image_size=SIZE, batch_size=2, seed=0)
    assert (bundle.num_classes, bundle.train_examples, bundle.validation_examples) == (3, 6, 3)
    assert bundle.class_names == tuple(sorted(COLOURS)) and bundle.split_files is None
    assert sorted(labels_of(bundle.train)) == [0, 0, 1, 1, 2, 2]
    sliced = dataclasses.replace(config, train="train[:50%]")  # TFDS's split slicing works
    assert make_datasets(sliced, image_size=SIZE, batch_size=2).train_examples == 3

    for name in ("tiny_shapes", "imagenet2012"):  # unknown to TFDS, and known but not prepared
        elsewhere = DataConfig(source="tfds", tfds_name=name, data_dir=str(tmp_path / "empty"))
        with pytest.raises(ValueError, match=f"'{name}'.*not prepared.*never downloads"):
            make_datasets(elsewhere, image_size=SIZE, batch_size=2)
    with pytest.raises(ValueError, match="no split 'test'"):
        load_raw(dataclasses.replace(config, validation="test"))


def test_training_on_one_class_is_refused_naming_the_folder(tmp_path):
    write_jpeg(tmp_path / "train" / "ants" / "0.jpg", solid(COLOURS["ants"], 8, 8))
    config = DataConfig(source="folder", train=str(tmp_path / "train"))
    with pytest.raises(ValueError, match=f"{tmp_path / 'train'}.*at least two"):
        make_datasets(config, image_size=SIZE, batch_size=1)


def write_classes(root, counts):
    """`counts[name]` tiny PNGs in `root/name/` for each class, in its COLOURS colour."""
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            png = tf.io.encode_png(solid(COLOURS[name], 6 + i % 3, 6)).numpy()
            (root / name / f"{i:02d}.png").write_bytes(png)
    return root


def files_of(split):
    """{class folder name: sorted paths} of a split's (path, label) pairs."""
    by_class = {}
    for path, _ in split:
        by_class.setdefault(os.path.basename(os.path.dirname(path)), []).append(path)
    return {name: sorted(paths) for name, paths in by_class.items()}


SPLIT_COUNTS = {"ants": 10, "bees": 7, "cats": 4}


def test_validation_split_holds_out_a_stratified_share_of_each_class(tmp_path):
    root = write_classes(tmp_path / "train", SPLIT_COUNTS)
    config = DataConfig(source="folder", train=str(root), validation_split=0.3)
    bundle = make_datasets(config, image_size=SIZE, batch_size=2, seed=1)
    train, validation = bundle.split_files["train"], bundle.split_files["validation"]
    assert (bundle.train_examples, bundle.validation_examples) == (len(train), len(validation))
    assert not {path for path, _ in train} & {path for path, _ in validation}
    assert sorted(path for path, _ in train + validation) == sorted(
        str(path) for path in root.glob("*/*.png")
    )
    held = {name: len(paths) for name, paths in files_of(validation).items()}
    for name, count in SPLIT_COUNTS.items():
        assert abs(held[name] - 0.3 * count) <= 1 and held[name] == max(1, round(0.3 * count))
    assert all(bundle.class_names[label] in path for path, label in train + validation)
    assert sorted(labels_of(bundle.validation)) == sorted(label for _, label in validation)

    # The split is the seed's: the same again, another for another seed; load_raw takes it too.
    assert open_source(config, seed=1).split("validation").files == validation
    assert open_source(config, seed=2).split("validation").files != validation
    raw, _ = load_raw(config, "validation", seed=1)
    assert sum(1 for _ in raw) == len(validation)


SPLIT_SCRIPT = """
import json, sys
from keras_inception.data import DataConfig
from keras_inception.data.sources import open_source
config = DataConfig(source="folder", train=sys.argv[1], validation_split=0.3)
print(json.dumps(open_source(config, seed=1).split("validation").files))
"""


@pytest.mark.subprocess
def test_validation_split_is_the_same_in_another_process(tmp_path):
    root = write_classes(tmp_path / "train", SPLIT_COUNTS)
    config = DataConfig(source="folder", train=str(root), validation_split=0.3)
    output = subprocess.run(
        [sys.executable, "-c", SPLIT_SCRIPT, str(root)], capture_output=True, text=True, check=True
    ).stdout
    there = [tuple(pair) for pair in json.loads(output.strip().splitlines()[-1])]
    assert there == open_source(config, seed=1).split("validation").files


def test_validation_split_refusals_name_the_key_or_the_folder(tmp_path):
    for value in (0.0, 1.0, -0.2):
        with pytest.raises(ConfigError, match=r"DataConfig\.validation_split must be in \(0, 1\)"):
            DataConfig(source="folder", train="x", validation_split=value)
    with pytest.raises(ConfigError, match="validation_split.*DataConfig.validation is set"):
        DataConfig(source="folder", train="x", validation="y", validation_split=0.2)
    with pytest.raises(ConfigError, match="validation_split.*source='folder'"):
        DataConfig(validation_split=0.2)  # the digits keep their fixed split
    root = write_classes(tmp_path / "train", {"ants": 3, "bees": 1})
    config = DataConfig(source="folder", train=str(root), validation_split=0.2)
    with pytest.raises(ValueError, match=f"{root / 'bees'} has one image.*at least 2"):
        make_datasets(config, image_size=SIZE, batch_size=1)


def test_an_empty_class_folder_in_the_training_folder_is_refused_naming_it(tmp_path):
    root = write_classes(tmp_path / "train", {"ants": 2, "bees": 2})
    (root / "cats").mkdir()
    validation = write_classes(tmp_path / "validation", {"ants": 1})
    (validation / "bees").mkdir()
    config = DataConfig(source="folder", train=str(root), validation=str(validation))
    with pytest.raises(ValueError, match=f"No images.*{root / 'cats'}"):
        make_datasets(config, image_size=SIZE, batch_size=1)
    # Without the cats, the empty bees folder is fine: validation may lack images of a class.
    kept = dataclasses.replace(config, classes=("ants", "bees"))
    assert make_datasets(kept, image_size=SIZE, batch_size=1).validation_examples == 1


def test_classes_keep_those_classes_labelled_in_their_order(tmp_path):
    root = write_classes(tmp_path / "train", {"ants": 2, "bees": 3, "cats": 4})
    config = DataConfig(source="folder", train=str(root), classes=("cats", "ants"))
    bundle = make_datasets(config, image_size=SIZE, batch_size=2)
    assert (bundle.num_classes, bundle.class_names) == (2, ("cats", "ants"))
    train = bundle.split_files["train"]
    assert {name: len(paths) for name, paths in files_of(train).items()} == {"cats": 4, "ants": 2}
    assert all(label == (0 if "cats" in path else 1) for path, label in train)
    with pytest.raises(ValueError, match=r"\['wasps'\].*\['ants', 'bees', 'cats'\]"):
        open_source(DataConfig(source="folder", train=str(root), classes=("ants", "wasps")))

    digits = make_datasets(DataConfig(classes=("5", "7", "9")), image_size=SIZE, batch_size=8)
    assert (digits.num_classes, digits.class_names) == (3, ("5", "7", "9"))
    every, _ = load_raw(DataConfig())
    # The fixed split's validation digits of those classes, relabelled 0, 1, 2.
    expected = [
        [5, 7, 9].index(label) for _, label in every.as_numpy_iterator() if label in (5, 7, 9)
    ]
    np.testing.assert_array_equal(labels_of(digits.validation), expected)
    with pytest.raises(ValueError, match=r"\['10'\].*'0', '1'"):
        open_source(DataConfig(classes=("1", "10")))
    with pytest.raises(ConfigError, match="DataConfig.classes"):
        DataConfig(classes=("ants", "ants"))
    with pytest.raises(ConfigError, match="DataConfig.classes.*source is one of"):
        DataConfig(source="tfrecord", num_classes=3, classes=("ants",))


def test_examples_per_class_keeps_a_seeded_few_of_each_training_class(tmp_path):
    root = write_classes(tmp_path / "train", {"ants": 10, "bees": 3})
    write_classes(tmp_path / "validation", {"ants": 5, "bees": 5})
    config = DataConfig(
        source="folder",
        train=str(root),
        validation=str(tmp_path / "validation"),
        examples_per_class=4,
    )
    bundle = make_datasets(config, image_size=SIZE, batch_size=2, seed=1)
    kept = files_of(bundle.split_files["train"])
    assert {name: len(paths) for name, paths in kept.items()} == {"ants": 4, "bees": 3}
    assert bundle.train_examples == 7 and bundle.validation_examples == 10  # validation whole
    assert files_of(open_source(config, seed=1).split("train").files) == kept
    assert files_of(open_source(config, seed=2).split("train").files)["ants"] != kept["ants"]
    # With a held-out split, the few come from the training share.
    held_out = DataConfig(
        source="folder", train=str(root), validation_split=0.5, examples_per_class=2
    )
    split = open_source(held_out, seed=1)
    train, validation = split.split("train").files, split.split("validation").files
    assert (len(train), len(validation)) == (2 + 1, 5 + 2)  # bees: round(1.5) = 2 held out
    assert not {path for path, _ in train} & {path for path, _ in validation}

    digits = make_datasets(DataConfig(examples_per_class=5), image_size=SIZE, batch_size=8)
    assert (digits.train_examples, digits.validation_examples) == (50, 360)
    with pytest.raises(ConfigError, match="DataConfig.examples_per_class"):
        DataConfig(examples_per_class=0)


def test_class_names_and_split_files_say_what_each_split_reads(image_folder):
    config = DataConfig(
        source="folder",
        train=str(image_folder / "train"),
        validation=str(image_folder / "validation"),
    )
    bundle = make_datasets(config, image_size=SIZE, batch_size=1)
    assert bundle.class_names == ("ants", "bees", "cats")
    train = bundle.split_files["train"]
    assert len(train) == bundle.train_examples == 10  # the corrupt file is listed: it is read
    assert sorted(train) == sorted(
        (str(path), ["ants", "bees", "cats"].index(path.parent.name))
        for path in (image_folder / "train").glob("*/*.jpg")
    )
    assert [label for _, label in bundle.split_files["validation"]] == [0, 1, 2]
    halves = [
        make_datasets(config, image_size=SIZE, batch_size=1, shard=(2, index)).split_files
        for index in range(2)
    ]  # each host lists its own share
    assert sorted(halves[0]["train"] + halves[1]["train"]) == sorted(train)
    digits = make_datasets(DataConfig(), image_size=SIZE, batch_size=8)
    assert digits.class_names == tuple("0123456789") and digits.split_files is None
