"""Faces: FaceNet's pixel scalings, embeddings of aligned crops, pairs files, verification
metrics as facenet computes them, and the `embed` and `verify` subcommands on a tiny IR-v1."""

import csv

import helpers
import numpy as np
import pytest
import tensorflow as tf
from scipy import interpolate
from sklearn.metrics import roc_auc_score, roc_curve

from keras_inception import InceptionResNetV1, faces
from keras_inception.data import fixed_standardization, pixel_scaling, prewhiten
from keras_inception.errors import ConfigError
from keras_inception.imagenet import preprocess_input
from keras_inception_cli import main

TINY = dict(weights=None, input_shape=(75, 75, 3), depths=(1, 1, 1), embedding_size=16)


def facenet_prewhiten(x):
    """facenet.prewhiten, written out: one image's own mean and floored standard deviation."""
    x = np.asarray(x, "float64")
    return (x - x.mean()) / max(x.std(), 1.0 / np.sqrt(x.size))


# Pixel scalings


def test_fixed_standardization_is_facenet_pytorchs_formula():
    pixels = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    scaled = fixed_standardization(pixels)
    assert isinstance(scaled, np.ndarray) and scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, (pixels.astype("float64") - 127.5) / 128, atol=1e-6)
    tensor = fixed_standardization(tf.constant(pixels))
    assert isinstance(tensor, tf.Tensor)
    np.testing.assert_array_equal(tensor.numpy(), scaled)


def test_prewhiten_is_facenets_formula_for_each_image_of_a_batch():
    rng = np.random.default_rng(1)
    dark = rng.integers(0, 60, (8, 8, 3))
    bright = rng.integers(150, 256, (8, 8, 3))
    batch = np.stack([dark, bright]).astype(np.uint8)
    whitened = prewhiten(batch)
    assert isinstance(whitened, np.ndarray) and whitened.dtype == np.float32
    for image, result in zip(batch, whitened):
        np.testing.assert_allclose(result, facenet_prewhiten(image), atol=1e-5)
        np.testing.assert_allclose(result, prewhiten(image), atol=1e-6)
    # Per image, not per batch: standardising the two together would give something else.
    assert not np.allclose(whitened, facenet_prewhiten(batch), atol=0.1)


def test_prewhiten_floors_the_deviation_of_a_nearly_flat_image_in_pixel_units():
    # One pixel a level brighter: std sqrt(p(1 - p)) with p = 1/size is just under the floor
    # 1/sqrt(size), which facenet applies to raw pixels (TF's op scales uint8 to [0, 1] first).
    flat = np.full((8, 8, 3), 100, np.uint8)
    flat[0, 0, 0] = 101
    # (float32 differences of numbers near 100 keep about three digits of the 0.07s)
    np.testing.assert_allclose(prewhiten(flat), facenet_prewhiten(flat), rtol=2e-3)
    np.testing.assert_array_equal(prewhiten(np.full((4, 4, 3), 7, np.uint8)), 0.0)


def test_pixel_scaling_maps_the_registrys_names():
    assert pixel_scaling("fixed_standardization") is fixed_standardization
    assert pixel_scaling("prewhiten") is prewhiten
    assert pixel_scaling("inception") is preprocess_input
    with pytest.raises(ConfigError, match="fixed_standardization, prewhiten") as error:
        pixel_scaling("vggface")
    assert error.value.key == "preprocessing"


# Verification metrics


def interleaved(same_distances, different_distances, per_fold):
    """Distances and same flags laid out as pairs.txt: each fold `per_fold` same pairs, then
    `per_fold` different ones."""
    same_folds = np.split(np.asarray(same_distances), len(same_distances) // per_fold)
    different_folds = np.split(
        np.asarray(different_distances), len(different_distances) // per_fold
    )
    distances = np.concatenate([np.concatenate(pair) for pair in zip(same_folds, different_folds)])
    same = np.tile(np.repeat([True, False], per_fold), len(same_folds))
    return distances, same


def test_separable_distances_are_verified_perfectly():
    rng = np.random.default_rng(2)
    same_distances = rng.uniform(0.1, 0.59, 100)
    different_distances = rng.uniform(1.5, 2.0, 100)
    # In every fold the farthest same pair and the closest different one (between grid points),
    # so that what the other folds choose separates each fold too, at FAR 0.
    same_distances[::10] = 0.5995
    different_distances[::10] = 1.4005
    result = faces.verification(*interleaved(same_distances, different_distances, 10))
    assert result.folds == 10
    np.testing.assert_array_equal(result.fold_accuracies, 1.0)
    assert result.accuracy == 1.0 and result.auc == 1.0
    assert result.val == 1.0 and result.far == 0.0
    assert result.threshold == pytest.approx(0.60)
    np.testing.assert_allclose(result.fold_thresholds, 0.60)


def test_ten_fold_accuracy_of_a_constructed_case():
    # Ten folds of 5 same pairs at 0.5 and 5 different ones at 1.5; one same pair of fold 0 lies
    # at 3.0. Every fold's training pairs choose 0.51, so fold 0 scores 9/10 and the others 1.
    distances, same = interleaved(np.full(50, 0.5), np.full(50, 1.5), 5)
    distances[0] = 3.0
    result = faces.verification(distances, same)
    np.testing.assert_allclose(result.fold_accuracies, [0.9] + [1.0] * 9)
    assert result.accuracy == pytest.approx(0.99)
    np.testing.assert_allclose(result.fold_thresholds, 0.51)
    assert result.threshold == pytest.approx(0.51)


def direct_fold_results(distances, same, folds, far_target):
    """facenet's calculate_roc / calculate_val folds, computed with whole pairs-by-thresholds
    tables over np.array_split (KFold's folds), the VAL threshold by `_threshold_at_far`."""
    results = []
    for test in np.array_split(np.arange(len(same)), folds):
        train = np.setdiff1d(np.arange(len(same)), test)
        grid = faces.ACCURACY_THRESHOLDS[:, None]
        accuracy = ((distances[train] < grid) == same[train]).mean(axis=1)
        threshold = faces.ACCURACY_THRESHOLDS[np.argmax(accuracy)]
        test_accuracy = ((distances[test] < threshold) == same[test]).mean()
        different = train[~same[train]]
        far_train = (distances[different] < faces.VAL_THRESHOLDS[:, None]).mean(axis=1)
        far_threshold = faces._threshold_at_far(faces.VAL_THRESHOLDS, far_train, far_target)
        accepted = distances[test] < far_threshold
        val = accepted[same[test]].mean()
        far = accepted[~same[test]].mean()
        results.append((test_accuracy, threshold, val, far))
    return np.array(results).T


def test_fold_results_equal_a_direct_computation():
    rng = np.random.default_rng(3)
    distances, same = interleaved(rng.normal(0.9, 0.3, 150), rng.normal(1.5, 0.3, 150), 15)
    distances = np.clip(distances, 0, 4)
    result = faces.verification(distances, same, far_target=0.05)
    accuracies, thresholds, vals, fars = direct_fold_results(distances, same, 10, 0.05)
    np.testing.assert_array_equal(result.fold_accuracies, accuracies)
    np.testing.assert_array_equal(result.fold_thresholds, thresholds)
    np.testing.assert_array_equal(result.fold_vals, vals)
    np.testing.assert_array_equal(result.fold_fars, fars)
    assert 0.5 < result.accuracy < 1.0 and 0 < result.val < 1


def test_roc_and_auc_are_scikit_learns():
    rng = np.random.default_rng(4)
    distances, same = interleaved(rng.uniform(0, 2, 40), rng.uniform(0.5, 3, 40), 4)
    result = faces.verification(distances, same)
    assert result.auc == roc_auc_score(same, -distances)
    fpr, tpr, scores = roc_curve(same, -distances)
    for ours, theirs in zip(result.roc(), (fpr, tpr, -scores)):
        np.testing.assert_array_equal(ours, theirs)


def test_the_far_threshold_is_facenets_interpolation_and_survives_plateaus():
    thresholds = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    rising = np.array([0.0, 0.1, 0.3, 0.6, 1.0])
    expected = interpolate.interp1d(rising, thresholds, kind="slinear")
    for target in (0.0, 0.05, 0.2, 0.6, 0.9):
        assert faces._threshold_at_far(thresholds, rising, target) == pytest.approx(
            expected(target)
        )
    plateaus = np.array([0.0, 0.0, 0.5, 0.5, 1.0])  # SciPy's interp1d refuses these
    assert faces._threshold_at_far(thresholds, plateaus, 0.0) == 1.0
    assert faces._threshold_at_far(thresholds, plateaus, 0.25) == 1.5
    assert faces._threshold_at_far(thresholds, plateaus, 0.5) == 3.0
    assert faces._threshold_at_far(thresholds, plateaus / 2, 0.6) == 4.0  # beyond every rate


def test_folds_of_one_kind_of_pair_are_refused_with_advice():
    distances = np.linspace(0, 2, 20)
    same = np.arange(20) < 10  # all same pairs first: folds of consecutive pairs hold one kind
    with pytest.raises(ValueError, match="fold 1 of 10 .* only same-person pairs: .* interleave"):
        faces.verification(distances, same)
    with pytest.raises(ValueError, match="cannot make 10 folds"):
        faces.verification(distances[:5], same[:5])


# Pairs files


def touch_images(root, names):
    """Empty files at `root / name` for each name (parsing checks that they exist only)."""
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def test_lfw_pairs_txt_names_images_by_person_and_number(tmp_path):
    touch_images(
        tmp_path,
        ["ann/ann_0001.jpg", "ann/ann_0002.jpg", "bob/bob_0001.png", "bob/bob_0012.png"],
    )
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("2\t1\nann\t1\t2\nann\t1\tbob\t12\nbob 1 12\nbob 1 ann 2\n")
    pairs = faces.read_pairs(str(pairs_file), str(tmp_path))
    assert pairs.folds == 2 and len(pairs) == 4
    assert [p.removeprefix(f"{tmp_path}/") for p in pairs.first] == [
        "ann/ann_0001.jpg",
        "ann/ann_0001.jpg",
        "bob/bob_0001.png",
        "bob/bob_0001.png",
    ]
    assert [p.removeprefix(f"{tmp_path}/") for p in pairs.second] == [
        "ann/ann_0002.jpg",
        "bob/bob_0012.png",
        "bob/bob_0012.png",
        "ann/ann_0002.jpg",
    ]
    np.testing.assert_array_equal(pairs.same, [True, False, True, False])


@pytest.mark.parametrize(
    "text, message",
    [
        ("2 1\nann 1 2\nann 1 bob 1\n", "announces 4 pairs in its header but holds 2"),
        ("ann 1 2\n", "line 1: expected LFW's header"),
        ("1 1\nann 1 2\nann one bob 1\n", "line 3: expected 'name n1 n2' or 'name1 n1 name2 n2'"),
        ("1 1\nann 1 2\nann 1 bob 7\n", r"names 1 missing images, the first .*bob_0007.jpg"),
    ],
)
def test_a_bad_pairs_txt_is_named(tmp_path, text, message):
    touch_images(tmp_path, ["ann/ann_0001.jpg", "ann/ann_0002.jpg", "bob/bob_0001.jpg"])
    (tmp_path / "pairs.txt").write_text(text)
    with pytest.raises(ValueError, match=message):
        faces.read_pairs(str(tmp_path / "pairs.txt"), str(tmp_path))


def test_csv_pairs_with_or_without_a_header_relative_to_the_images_folder(tmp_path):
    touch_images(tmp_path, ["a.png", "b.png", "c.png"])
    rows = "a.png,b.png,1\na.png, c.png ,false\n"
    for text in (rows, "first,second,same\n" + rows):
        (tmp_path / "pairs.csv").write_text(text)
        pairs = faces.read_pairs(str(tmp_path / "pairs.csv"), str(tmp_path))
        assert pairs.first == [str(tmp_path / "a.png")] * 2
        assert pairs.second == [str(tmp_path / "b.png"), str(tmp_path / "c.png")]
        np.testing.assert_array_equal(pairs.same, [True, False])
        assert pairs.folds is None
    (tmp_path / "pairs.csv").write_text(rows + "a.png,b.png,maybe\n")
    with pytest.raises(ValueError, match=r"pairs.csv, line 3: expected path,path,same"):
        faces.read_pairs(str(tmp_path / "pairs.csv"), str(tmp_path))


def test_a_missing_pairs_file_is_named(tmp_path):
    with pytest.raises(ValueError, match=f"no such pairs file: {tmp_path}/pairs.txt"):
        faces.read_pairs(str(tmp_path / "pairs.txt"), str(tmp_path))


# Embeddings


@pytest.fixture(scope="module")
def tiny_model():
    """A tiny Inception-ResNet-v1 with a 16-d embedding head and seeded random weights."""
    return helpers.randomise(InceptionResNetV1(**TINY), seed=5)


@pytest.fixture(scope="module")
def crops():
    """Three uint8 face 'crops' of different sizes."""
    rng = np.random.default_rng(6)
    return [
        rng.integers(0, 256, (*size, 3), dtype=np.uint8) for size in [(75, 75), (90, 80), (60, 64)]
    ]


def reference_embeddings(model, crops, scale):
    """Each crop resized whole to 75x75, scaled and embedded alone, then normalised."""
    resized = [tf.image.resize(crop, (75, 75)).numpy() for crop in crops]
    outputs = np.concatenate([helpers.run(model, scale(image[None])) for image in resized])
    return outputs / np.linalg.norm(outputs, axis=1, keepdims=True)


@pytest.mark.parametrize("preprocessing", ["fixed_standardization", "prewhiten"])
def test_embeddings_are_unit_rows_of_each_whole_crop(tiny_model, crops, preprocessing):
    embedder = faces.Embedder(tiny_model, preprocessing, batch_size=2)
    embeddings = embedder.embed(iter(crops))
    assert embeddings.shape == (3, 16) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-6)
    expected = reference_embeddings(tiny_model, crops, pixel_scaling(preprocessing))
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)


def test_flip_sums_the_mirror_images_embedding_and_normalises(tiny_model, crops):
    plain = faces.Embedder(tiny_model).embed(crops)
    mirrored = faces.Embedder(tiny_model).embed([crop[:, ::-1] for crop in crops])
    flipped = faces.Embedder(tiny_model, flip=True).embed(crops)
    np.testing.assert_allclose(flipped, faces.l2_normalise(plain + mirrored), atol=1e-5)
    assert not np.allclose(flipped, plain, atol=1e-3)


def test_an_unreadable_image_is_named(tiny_model, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    with pytest.raises(ValueError, match=f"cannot read image {broken}"):
        faces.Embedder(tiny_model).embed_files([str(broken)])


def test_image_files_searches_folders_and_names_a_missing_path(tmp_path):
    touch_images(tmp_path, ["b/2.jpg", "b/1.PNG", "a.png", ".hidden/x.png", "notes.txt"])
    assert faces.image_files([str(tmp_path / "a.png"), str(tmp_path / "b")]) == [
        str(tmp_path / "a.png"),
        str(tmp_path / "b" / "1.PNG"),
        str(tmp_path / "b" / "2.jpg"),
    ]
    assert len(faces.image_files([str(tmp_path)])) == 3
    with pytest.raises(ValueError, match="no such image file or folder"):
        faces.image_files([str(tmp_path / "c")])


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_embeddings_files_round_trip_with_their_paths(tmp_path, suffix):
    embeddings = faces.l2_normalise(np.random.default_rng(7).normal(size=(3, 4)).astype("float32"))
    paths = ["x/a.png", "b c.jpg", "d,e.png"]
    output = tmp_path / f"faces{suffix}"
    faces.write_embeddings(paths, embeddings, output)
    read_paths, read = faces.read_embeddings(output)
    assert read_paths == paths
    np.testing.assert_array_equal(read, embeddings)
    if suffix == ".npy":
        assert (tmp_path / "faces.paths.txt").read_text() == "x/a.png\nb c.jpg\nd,e.png\n"
    else:
        assert next(csv.reader(open(output))) == ["path", "e0", "e1", "e2", "e3"]
    with pytest.raises(ValueError, match="a .npy or a .csv file"):
        faces.write_embeddings(paths, embeddings, tmp_path / "faces.json")


# The embed and verify subcommands

PEOPLE = ("ann", "bob", "cy", "dee")
# LFW's layout: 2 folds, each 2 same-person pairs and then 2 different-person ones.
PAIRS_TXT = """2\t2
ann\t1\t2
bob\t1\t3
ann\t1\tbob\t2
cy\t3\tdee\t1
cy\t1\t2
dee\t2\t3
ann\t3\tcy\t2
bob\t1\tdee\t3
"""


@pytest.fixture(scope="module")
def lfw_folder(tmp_path_factory, tiny_model):
    """The tiny model saved as model.keras beside an LFW-layout folder of PNG crops (three of
    each of four people, of several sizes) and its pairs.txt."""
    root = tmp_path_factory.mktemp("lfw")
    tiny_model.save(root / "model.keras")
    rng = np.random.default_rng(8)
    for person in PEOPLE:
        (root / person).mkdir()
        for number in (1, 2, 3):
            crop = rng.integers(0, 256, (70 + 5 * number, 75, 3), dtype=np.uint8)
            tf.io.write_file(
                str(root / person / f"{person}_{number:04d}.png"), tf.io.encode_png(crop)
            )
    (root / "pairs.txt").write_text(PAIRS_TXT)
    return root


def test_embed_writes_a_folders_embeddings_with_their_paths(
    lfw_folder, tiny_model, tmp_path, capsys
):
    model = str(lfw_folder / "model.keras")
    output = tmp_path / "faces.npy"
    inputs = [str(lfw_folder / "ann"), str(lfw_folder / "bob" / "bob_0001.png")]
    assert main(["embed", "--model", model, *inputs, "-o", str(output)]) == 0
    assert capsys.readouterr().out == (
        f"Wrote 4 embeddings (16-d) to {output}, their paths to {tmp_path / 'faces.paths.txt'}.\n"
    )
    paths, embeddings = faces.read_embeddings(output)
    assert paths == [*(str(lfw_folder / "ann" / f"ann_000{n}.png") for n in (1, 2, 3)), inputs[1]]
    expected = faces.Embedder(tiny_model).embed_files(paths)
    np.testing.assert_allclose(embeddings, expected, atol=1e-6)

    options = ["--flip", "--preprocessing", "prewhiten", "--batch-size", "3"]
    assert main(["embed", "--model", model, *inputs, *options, "-o", str(tmp_path / "f.csv")]) == 0
    paths, embeddings = faces.read_embeddings(tmp_path / "f.csv")
    expected = faces.Embedder(tiny_model, "prewhiten", flip=True).embed_files(paths)
    np.testing.assert_allclose(embeddings, expected, atol=1e-6)


def test_verify_prints_the_packages_table_and_draws_the_roc(
    lfw_folder, tiny_model, tmp_path, capsys
):
    pairs_txt = str(lfw_folder / "pairs.txt")
    model = ["--model", str(lfw_folder / "model.keras")]
    roc = tmp_path / "roc.png"
    assert main(["verify", pairs_txt, "--images", str(lfw_folder), *model, "--roc", str(roc)]) == 0
    pairs = faces.read_pairs(pairs_txt, str(lfw_folder))
    expected = faces.verify(faces.Embedder(tiny_model), pairs)
    assert expected.folds == 2  # the file's own
    table = faces.verification_table(expected)
    assert table.startswith("| Pairs | Accuracy (2-fold) | VAL @ FAR=0.001 |")
    assert capsys.readouterr().out == f"{table}Wrote {roc}.\n"
    assert roc.read_bytes()[:4] == b"\x89PNG"

    pairs_csv = tmp_path / "pairs.csv"
    rows = zip(pairs.first, pairs.second, pairs.same.astype(int))
    pairs_csv.write_text("".join(f"{a},{b},{same}\n" for a, b, same in rows))
    assert main(["verify", str(pairs_csv), *model, "--folds", "2", "--far", "0.5"]) == 0
    again = faces.verification(expected.distances, expected.same, folds=2, far_target=0.5)
    assert capsys.readouterr().out == faces.verification_table(again)


def test_embed_and_verify_name_what_they_cannot_use(lfw_folder, tmp_path, capsys):
    model = ["--model", str(lfw_folder / "model.keras")]
    broken = tmp_path / "faces" / "broken.png"
    broken.parent.mkdir()
    broken.write_bytes(b"not a picture")
    cases = [
        (
            ["embed", *model, str(broken.parent), "-o", str(tmp_path / "e.npy")],
            f"cannot read image {broken}",
        ),
        (["embed", *model, str(broken), "-o", str(tmp_path / "e.json")], "a .npy or a .csv file"),
        (["embed", str(broken), "-o", str(tmp_path / "e.npy")], "give either --model or --network"),
        (
            [
                "embed",
                *model,
                "--preprocessing",
                "vggface",
                str(broken),
                "-o",
                str(tmp_path / "e.npy"),
            ],
            "preprocessing must be one of inception, fixed_standardization, prewhiten",
        ),
        (
            [
                "verify",
                *model,
                "--network",
                "inception_resnet_v1",
                str(lfw_folder / "pairs.txt"),
                "--images",
                str(lfw_folder),
            ],
            "give either --model or --network",
        ),
        (
            [
                "verify",
                "--network",
                "inception_resnet_v1",
                "--weights",
                "imagenet",
                str(tmp_path / "p.csv"),
            ],
            "no such pairs file",
        ),
        (
            [
                "verify",
                "--network",
                "inception_resnet_v1",
                "--weights",
                "imagenet",
                str(lfw_folder / "pairs.txt"),
                "--images",
                str(lfw_folder),
            ],
            "publishes facenet-vggface2, facenet-casia; got 'imagenet'",
        ),
    ]
    for command, message in cases:
        assert main(command) == 1, command
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"keras-inception {command[0]}: ") and message in line, line
    assert not (tmp_path / "e.npy").exists()
