"""The `evaluate` and `predict` subcommands on tiny saved models and a tiny class-folder dataset."""

import csv

import numpy as np
import pytest
import tensorflow as tf

from keras_inception import InceptionResNetV2, decode_predictions
from keras_inception.evaluation import Ensemble
from keras_inception_cli import main

TINY = dict(input_shape=(75, 75, 3), depths=(1, 1, 1), weights=None)
SIZES = [(80, 100), (96, 90), (120, 84)]


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """Tiny Inception-ResNet-v2s saved to .keras: a 3-class one twice (an ensemble's members) and
    a 1000-class one (ImageNet names)."""
    folder = tmp_path_factory.mktemp("models")
    three = InceptionResNetV2(classes=3, **TINY)
    imagenet = InceptionResNetV2(classes=1000, **TINY)
    for name, model in [("a", three), ("b", three), ("imagenet", imagenet)]:
        model.save(folder / f"{name}.keras")
    return folder, three, imagenet


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Three class folders of PNGs of different sizes, and the images and labels they hold."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    images, labels = [], []
    for label, class_name in enumerate(["cat", "dog", "fox"]):
        (root / class_name).mkdir()
        for index, size in enumerate(SIZES):
            image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            tf.io.write_file(str(root / class_name / f"{index}.png"), tf.io.encode_png(image))
            images.append(image)
            labels.append(label)
    return root, images, np.array(labels)


def markdown_rows(output):
    """The cells of each data row of a Markdown table in `output`."""
    lines = [line for line in output.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


@pytest.mark.slow
def test_evaluate_prints_a_row_per_model_and_ensemble(saved_models, image_folder, tmp_path, capsys):
    folder, three, _ = saved_models
    root, images, labels = image_folder
    status = main(
        [
            "evaluate",
            "--model",
            str(folder / "a.keras"),
            "--model",
            str(folder / "b.keras"),
            "--crops",
            "single,10",
            "--data",
            str(root),
            "--csv",
            str(tmp_path / "report.csv"),
        ]
    )
    assert status == 0
    rows = markdown_rows(capsys.readouterr().out)
    assert [row[:3] for row in rows] == [
        [model, crops, str(len(images))]
        for model in ("a", "b", "a + b")
        for crops in ("single", "10")
    ]
    for crops, (_, _, _, top1, _) in zip(("single", "10"), rows):
        predicted = Ensemble([three]).predict(images, crops).argmax(axis=1)
        assert float(top1) == pytest.approx(100 * np.mean(predicted != labels), abs=0.01)
    with open(tmp_path / "report.csv", newline="") as file:
        assert [row["model"] for row in csv.DictReader(file)] == [
            "a",
            "a",
            "b",
            "b",
            "a + b",
            "a + b",
        ]


def test_evaluate_refuses_bad_options_by_name(saved_models, image_folder, capsys):
    folder, _, _ = saved_models
    root, _, _ = image_folder
    crops = ["--crops", "single,7"]
    assert main(["evaluate", "--model", str(folder / "a.keras"), *crops, "--data", str(root)]) == 1
    assert "Unknown crop scheme '7'" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(folder / "missing.keras"), "--data", str(root)]) == 1
    assert "no such model file or run folder: " in capsys.readouterr().err
    assert main(["evaluate", "--data", str(root)]) == 1
    assert "either --model" in capsys.readouterr().err
    two = ["--model", str(folder / "a.keras"), "--model", str(folder / "b.keras")]
    assert main(["evaluate", *two, "--member-weights", "1", "--data", str(root)]) == 1
    assert "1 --member-weights for 2 --model" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(folder / "a.keras"),
                "--data",
                str(root),
                "--label-offset",
                "-1",
            ]
        )
        == 1
    )
    assert "label_offset" in capsys.readouterr().err


def test_predict_prints_imagenet_names_or_class_indices(saved_models, image_folder, capsys):
    folder, three, imagenet = saved_models
    root, images, _ = image_folder
    path = str(root / "cat" / "0.png")
    assert main(["predict", "--model", str(folder / "imagenet.keras"), path]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = decode_predictions(Ensemble([imagenet]).predict(images[:1]))[0]
    assert lines[0] == path
    assert [line.split()[1] for line in lines[1:]] == [name for _, name, _ in expected]

    assert main(["predict", "--model", str(folder / "a.keras"), "--top", "2", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    best = np.argsort(Ensemble([three]).predict(images[:1])[0])[::-1][:2]
    assert lines[1:] == [
        f"  {rank}. class {index}  {Ensemble([three]).predict(images[:1])[0][index]:.4f}"
        for rank, index in enumerate(best, 1)
    ]


def test_predict_names_an_image_it_cannot_read(saved_models, tmp_path, capsys):
    folder, _, _ = saved_models
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture")
    assert main(["predict", "--model", str(folder / "a.keras"), str(broken)]) == 1
    assert f"keras-inception predict: cannot read image {broken}" in capsys.readouterr().err


def test_a_damaged_model_file_is_one_line_naming_it(saved_models, image_folder, tmp_path, capsys):
    folder, _, _ = saved_models
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes((folder / "a.keras").read_bytes()[:5000])  # a copy cut short
    root, _, _ = image_folder
    image = next(root.rglob("*.png"))
    for command in (
        ["predict", "--model", str(damaged), str(image)],
        ["evaluate", "--model", str(damaged), "--data", str(root)],
    ):
        assert main(command) == 1
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert f"cannot read the model file {damaged}" in line


def test_predict_refuses_a_count_of_classes_below_one(saved_models, capsys):
    folder, _, _ = saved_models
    with pytest.raises(SystemExit) as exit:
        main(["predict", "--model", str(folder / "a.keras"), "--top", "-1", "x.png"])
    assert exit.value.code == 2 and "expected a positive integer" in capsys.readouterr().err
