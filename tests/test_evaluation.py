"""Evaluation: crop geometry, averaging over crops and ensemble members, bounded memory, the
report, and the `evaluate` / `predict` subcommands."""

import csv
import itertools
import tracemalloc

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_inception import preprocess_input
from keras_inception.evaluation import (
    SCHEMES,
    CentralCrop,
    CornerCrops,
    Ensemble,
    EvaluationResult,
    GoogLeNetCrops,
    Member,
    evaluate,
    get_scheme,
    markdown_table,
    write_csv,
)

INPUT = (75, 75)


def coordinate_image(height, width):
    """An image whose pixel (r, c) holds r in red and c in green: crops show where they came from."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.arange(height)[:, None]
    image[..., 1] = np.arange(width)[None, :]
    return image


def box_seen_in(crop):
    """The (y0, x0, y1, x1, mirrored) a crop of a coordinate image was resampled from, assuming
    the crop is an axis-aligned bilinear resampling at pixel centres (which is checked)."""
    rows, cols = crop[:, 0, 0], crop[0, :, 1]
    np.testing.assert_allclose(
        crop[..., 0], np.broadcast_to(rows[:, None], crop.shape[:2]), atol=1e-3
    )
    np.testing.assert_allclose(
        crop[..., 1], np.broadcast_to(cols[None, :], crop.shape[:2]), atol=1e-3
    )

    def span(samples):
        low, high = sorted((samples[0], samples[-1]))
        step = (high - low) / (len(samples) - 1)
        return low + 0.5 - step / 2, high + 0.5 + step / 2

    (y0, y1), (x0, x1) = span(rows), span(cols)
    return y0, x0, y1, x1, bool(cols[0] > cols[-1])


def expected_corner_boxes(region, side):
    """Top-left, top-right, bottom-left, bottom-right and centre squares of `side` in `region`."""
    y0, x0, y1, x1 = region
    tops_lefts = [(y0, x0), (y0, x1 - side), (y1 - side, x0), (y1 - side, x1 - side)]
    tops_lefts.append(((y0 + y1 - side) / 2, (x0 + x1 - side) / 2))
    return [(top, left, top + side, left + side) for top, left in tops_lefts]


def mirrored_pairs(boxes):
    return [(*box, mirrored) for box in boxes for mirrored in (False, True)]


def expected_boxes(scheme, height, width):
    """Each scheme's boxes, written out from its definition for a square input."""
    short = min(height, width)
    whole = (0, 0, height, width)
    if scheme == "single":
        # Slim's eval crop is tf.image.central_crop: read its edges off the coordinate image.
        central = tf.image.central_crop(coordinate_image(height, width), 0.875).numpy()
        rows, cols = central[:, 0, 0], central[0, :, 1]
        return [(rows[0], cols[0], rows[-1] + 1.0, cols[-1] + 1.0, False)]
    if scheme in ("10", "12"):
        boxes = expected_corner_boxes(whole, short * 224 / 256)
        return mirrored_pairs(boxes + [whole] * (scheme == "12"))
    squares = [
        (0, x, short, x + short) if width >= height else (x, 0, x + short, short)
        for x in (0, (max(height, width) - short) / 2, max(height, width) - short)
    ]
    boxes = []
    for size, square in itertools.product((256, 288, 320, 352), squares):
        boxes += expected_corner_boxes(square, short * 224 / size) + [square]
    return mirrored_pairs(boxes)


@pytest.mark.parametrize("scheme", ["single", "10", "12", "144"])
@pytest.mark.parametrize("height, width", [(150, 250), (250, 150)])
def test_each_scheme_crops_exactly_its_documented_boxes(scheme, height, width):
    expected = np.array(expected_boxes(scheme, height, width), dtype="float64")
    boxes = np.array(SCHEMES[scheme].boxes((height, width), INPUT), dtype="float64")
    np.testing.assert_allclose(boxes, expected, atol=1e-9)
    crops = SCHEMES[scheme](coordinate_image(height, width), INPUT).numpy()
    assert crops.shape == (len(expected), *INPUT, 3)
    seen = np.array([box_seen_in(crop) for crop in crops], dtype="float64")
    np.testing.assert_allclose(seen, expected, atol=2e-3)


def test_single_crop_is_slims_evaluation_preprocessing():
    image = np.random.default_rng(1).integers(0, 256, (200, 310, 3), dtype=np.uint8)
    slim = tf.image.central_crop(tf.image.convert_image_dtype(image, tf.float32), 0.875)
    slim = (tf.image.resize(slim, INPUT) - 0.5) * 2.0
    ours = preprocess_input(CentralCrop()(image, INPUT).numpy())
    np.testing.assert_allclose(ours[0], slim.numpy(), atol=1e-4)


def test_scales_are_configurable_and_checked():
    assert GoogLeNetCrops(scales=(1.0, 1.5)).name == "72"
    assert len(GoogLeNetCrops(scales=(1.0, 1.5)).boxes((100, 120), INPUT)) == 72
    box = CornerCrops(scale=2.0).boxes((100, 120), INPUT)[0]
    assert (box.y1 - box.y0, box.x1 - box.x0) == (50, 50)
    with pytest.raises(ValueError, match="at least 1"):
        GoogLeNetCrops(scales=(0.9,))
    with pytest.raises(ValueError, match="Unknown crop scheme '7'"):
        get_scheme("7")
    with pytest.raises(ValueError, match=r"shape \(10, 10\)"):
        CentralCrop()(np.zeros((10, 10), np.uint8), INPUT)


def small_classifier(classes=4, size=75, activation=None, seed=0):
    """A small random CNN: enough to give image-dependent probabilities, quick to run."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(4, 5, strides=4, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(classes, activation=activation),
        ]
    )


def random_images(count, seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (rng.integers(80, 130), rng.integers(80, 130), 3), dtype=np.uint8)
        for _ in range(count)
    ]


def probabilities_by_hand(model, images, scheme, input_size=INPUT):
    """Mean over each image's crops of softmax(model(crops)), one image at a time."""
    return np.stack(
        [
            keras.ops.convert_to_numpy(
                keras.ops.softmax(model(preprocess_input(scheme(image, input_size).numpy())))
            ).mean(axis=0)
            for image in images
        ]
    )


def test_an_ensemble_of_one_model_is_that_model():
    model = small_classifier()
    images = random_images(3)
    for crops in ("single", "10"):
        expected = probabilities_by_hand(model, images, SCHEMES[crops])
        np.testing.assert_allclose(Ensemble([model]).predict(images, crops), expected, atol=1e-5)


def test_an_ensemble_is_the_weighted_mean_of_its_members_computed_separately():
    small, large = small_classifier(seed=1), small_classifier(size=99, seed=2)
    images = random_images(3, seed=1)
    ensemble = Ensemble([small, large], weights=[1.0, 3.0])
    expected = (
        probabilities_by_hand(small, images, SCHEMES["12"])
        + 3 * probabilities_by_hand(large, images, SCHEMES["12"], (99, 99))
    ) / 4
    np.testing.assert_allclose(ensemble.predict(images, "12", batch_size=5), expected, atol=1e-5)


def test_softmax_and_logits_models_are_told_apart():
    logits, softmax = small_classifier(seed=3), small_classifier(activation="softmax", seed=3)
    images = random_images(2, seed=2)
    assert Member(logits).from_logits and not Member(softmax).from_logits
    np.testing.assert_allclose(
        Ensemble([logits]).predict(images), Ensemble([softmax]).predict(images), atol=1e-6
    )
    with pytest.raises(ValueError, match="from_logits"):
        Member(small_classifier(activation="sigmoid"))


def test_same_size_members_merge_into_one_keras_model(tmp_path):
    first, second = small_classifier(seed=4), small_classifier(activation="softmax", seed=5)
    ensemble = Ensemble([first, second], weights=[2.0, 1.0])
    path = tmp_path / "ensemble.keras"
    ensemble.to_keras().save(path)
    merged = keras.saving.load_model(path)
    x = np.random.default_rng(3).uniform(-1, 1, (2, *INPUT, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy((2 * keras.ops.softmax(first(x)) + second(x)) / 3)
    np.testing.assert_allclose(merged.predict(x, verbose=0), expected, atol=1e-6)
    with pytest.raises(ValueError, match="one input size"):
        Ensemble([first, small_classifier(size=99)]).to_keras()
    with pytest.raises(ValueError, match="same classes"):
        Ensemble([first, small_classifier(classes=5)])


def constant_model(probabilities):
    """A model that ignores its input: softmax of a fixed bias."""
    inputs = keras.Input((*INPUT, 3))
    features = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(
        len(probabilities),
        activation="softmax",
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(np.log(probabilities)),
    )(features)
    return keras.Model(inputs, outputs)


def test_144_crops_of_a_model_that_ignores_its_input_give_its_constant():
    model = constant_model([0.1, 0.2, 0.3, 0.4])
    constant = model.predict(np.zeros((1, *INPUT, 3)), verbose=0)[0]
    predicted = Ensemble([model]).predict(random_images(3, seed=3), "144", batch_size=50)
    np.testing.assert_allclose(predicted, np.tile(constant, (3, 1)), atol=1e-6)


def central_vision_model():
    """A model that only sees the central third of its input: class 0 for red there, 1 for green,
    and 2 (nothing) when the centre is black. Like a network trained on centred objects."""
    model = keras.Sequential(
        [
            keras.Input((*INPUT, 3)),
            keras.layers.Cropping2D(25),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3),
        ]
    )
    # Pixels are in [-1, 1]: a black centre gives logits (0, 0, 1), a red or green object
    # covering a third of it lifts its class by about 13.
    kernel = np.zeros((3, 3), "float32")
    kernel[0, 0] = kernel[1, 1] = 20.0
    model.layers[-1].set_weights([kernel, np.array([20.0, 20.0, 1.0], "float32")])
    return model


def off_centre_objects():
    """Landscape images with a red (label 0) or green (label 1) square centred on one of the four
    corner crops of the 10-crop scheme, away from the centre the single crop looks at."""
    height, width, side = 100, 200, 16
    crop = height * 224 / 256
    data = []
    for label, (top, left) in itertools.product((0, 1), [(0, 0), (0, 1), (1, 0), (1, 1)]):
        y = round(top * (height - crop) + crop / 2 - side / 2)
        x = round(left * (width - crop) + crop / 2 - side / 2)
        image = np.zeros((height, width, 3), np.uint8)
        image[y : y + side, x : x + side, label] = 255
        data.append((image, label))
    return data


def test_multi_crop_lowers_the_error_on_off_centre_objects():
    results = evaluate(central_vision_model(), off_centre_objects(), crops=("single", "10"))
    errors = {result.crops: result.top1_error for result in results}
    assert errors["single"] == 1.0
    assert errors["10"] < errors["single"]


def spy_on_batches(model):
    """Record the size of every batch `model.predict_on_batch` is given."""
    sizes = []
    predict = model.predict_on_batch

    def recording(x):
        sizes.append(len(x))
        return predict(x)

    model.predict_on_batch = recording
    return sizes


def test_144_crop_memory_does_not_grow_with_the_dataset():
    model = constant_model([0.25] * 4)
    sizes = spy_on_batches(model)
    member = Member(model, inference_after=None)  # every chunk through the spied Keras call

    def peak_memory(count):
        # Images made as they are read, large enough that holding them all would show.
        rng = np.random.default_rng(count)
        data = ((rng.integers(0, 256, (300, 320, 3), dtype=np.uint8), 0) for _ in range(count))
        tracemalloc.start()
        evaluate(member, data, crops=("144",), batch_size=36, images_per_step=2)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    small, large = peak_memory(2), peak_memory(16)
    assert max(sizes) == 36 and sum(sizes) == 144 * 18
    assert large < 1.25 * small, (small, large)


def test_errors_are_counted_over_the_whole_dataset_and_reported():
    # Image i has a mean brightness that the constant model ignores; labels are chosen so that
    # the model's fixed ranking (3, 2, 1, 0) puts 2 of 5 labels first and all in its top 5.
    model = constant_model([0.1, 0.2, 0.3, 0.4])
    data = [
        (np.full((80, 90, 3), 10 * i, np.uint8), label) for i, label in enumerate([3, 0, 3, 1, 2])
    ]
    results = evaluate([model, model], data, crops=("single",), images_per_step=2)
    assert [result.model for result in results] == [
        model.name,
        f"{model.name} #2",
        f"{model.name} + {model.name} #2",
    ]
    for result in results:
        assert (result.images, result.top1_error, result.top5_error) == (5, pytest.approx(0.6), 0.0)


def test_report_as_markdown_and_csv(tmp_path):
    results = [
        EvaluationResult("Inception-v4", "144", 50000, 0.1, 0.025),
        EvaluationResult("v4 + 3 x IR-v2", "144", 50000, 0.0831, 0.0309),
    ]
    table = markdown_table(results).splitlines()
    assert table[0].startswith("| Network | Crops |")
    assert table[3] == "| v4 + 3 x IR-v2 | 144 | 50000 | 8.31 | 3.09 |"
    write_csv(results, tmp_path / "report.csv")
    with open(tmp_path / "report.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows[1]["model"] == "v4 + 3 x IR-v2" and float(rows[1]["top1_error"]) == 0.0831


def test_labels_outside_the_classes_are_refused_by_name():
    with pytest.raises(ValueError, match="Label 4 is outside the models' 4 classes"):
        evaluate(constant_model([0.25] * 4), [(np.zeros((80, 80, 3), np.uint8), 4)])


def test_ensemble_arguments_are_checked_by_name():
    model = small_classifier()
    with pytest.raises(ValueError, match="must be positive, got 0"):
        Ensemble([model, model], weights=[1.0, 0.0])
    with pytest.raises(ValueError, match="2 weights for 1 models"):
        Ensemble([model], weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="give its weight to Member"):
        Ensemble([Member(model)], weights=[2.0])
    with pytest.raises(ValueError, match="carries its own weights"):
        evaluate(Ensemble([model]), [], weights=[1.0])
