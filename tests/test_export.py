"""Exported artefacts: each format run by its own runtime in a process that never imports
keras_inception, on raw images of several sizes and a grayscale one, against our `predict`."""

import importlib.util
import json
import os
import subprocess
import sys

import helpers
import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_inception_cli as cli
from keras_inception import InceptionResNetV2
from keras_inception.deployment import (
    FORMATS,
    RawImagePreprocessing,
    export,
    formats,
    load_exported,
)
from keras_inception.evaluation import Ensemble
from keras_inception.models import with_class_names

CLASS_NAMES = ["cat", "dog", "fish"]
# float32 runtimes; OpenVINO is asked for float32 too (on bf16 CPUs its default is bfloat16).
TOLERANCE = 1e-5

# Each format's plain runtime, as a user's server would call it: reads images.npz (RGB images
# under their names, and `gray`), prints one JSON line of probabilities per image.
RUNTIMES = {
    "saved_model": (
        "tensorflow",
        """
import tensorflow as tf
loaded = tf.saved_model.load(folder)
serve = loaded.signatures["serving_default"]
def run(image):
    return serve(images=tf.constant(image[None]))["probabilities"].numpy()[0]
extra["class_names"] = [n.decode() for n in loaded.signatures["class_names"]()["output_0"].numpy()]
extra["gray_direct"] = run(images["gray"]).tolist()
encoded = tf.constant([tf.io.encode_png(images["gray"]).numpy(), tf.io.encode_png(images["wide"]).numpy()])
extra["encoded"] = loaded.signatures["serve_encoded"](encoded=encoded)["probabilities"].numpy().tolist()
""",
    ),
    "litert": (
        "ai_edge_litert",
        """
from ai_edge_litert.interpreter import Interpreter
interpreter = Interpreter(model_path=folder + "/model.tflite")
source, = interpreter.get_input_details()
result, = interpreter.get_output_details()
def run(image):
    interpreter.resize_tensor_input(source["index"], (1, *image.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], image[None])
    interpreter.invoke()
    return interpreter.get_tensor(result["index"])[0]
""",
    ),
    "onnx": (
        "onnxruntime",
        """
import onnxruntime
session = onnxruntime.InferenceSession(folder + "/model.onnx", providers=["CPUExecutionProvider"])
def run(image):
    return session.run(None, {session.get_inputs()[0].name: image[None]})[0][0]
""",
    ),
    "openvino": (
        "openvino",
        """
import openvino
compiled = openvino.Core().compile_model(folder + "/model.xml", "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
def run(image):
    return compiled(image[None])[compiled.output(0)][0]
""",
    ),
}
# What writing each format needs beyond TensorFlow (the export extras, as the runtimes above).
CONVERTERS = {"onnx": ("tf2onnx", "onnx"), "openvino": ("openvino",)}


def require(*modules):
    """Skip unless every module in `modules` is installed."""
    missing = [m for m in dict.fromkeys(modules) if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed (.ci/run installs the export extras: "
            "pip install -e '.[export]')"
        )


def require_format(format):
    """Skip unless `format` can be written and run by its plain runtime here."""
    require(*CONVERTERS.get(format, ()), RUNTIMES[format][0])


SCRIPT = """
import json, sys
import numpy as np
folder = sys.argv[1]
images = dict(np.load(folder + "/../images.npz"))
extra = {{}}
{runtime}
rgb = {{name: image if image.shape[-1] == 3 else np.repeat(image, 3, -1) for name, image in images.items()}}
probabilities = {{name: np.asarray(run(image)).tolist() for name, image in rgb.items()}}
extra["labels"] = open(folder + "/labels.txt").read().splitlines()
assert not [m for m in sys.modules if m.startswith("keras_inception")]
print(json.dumps({{"probabilities": probabilities, **extra}}))
"""


@pytest.fixture(scope="module")
def model():
    """A tiny Inception-ResNet-v2 with seeded weights (batch norm statistics included), logits
    out (the export adds the softmax), and class names. The classifier is scaled up so that
    images get confident, different answers, as from a trained model."""
    network = InceptionResNetV2(
        weights=None,
        input_shape=(helpers.SMALL, helpers.SMALL, 3),
        classes=len(CLASS_NAMES),
        depths=helpers.TINY_DEPTHS,
        classifier_activation=None,
    )
    helpers.randomise(network)
    classifier = network.get_layer("Logits__Logits")
    classifier.kernel.assign(classifier.kernel * 40.0)
    return with_class_names(network, CLASS_NAMES)


@pytest.fixture(scope="module")
def raw_images():
    """uint8 images of two sizes (one smaller than the network's input) and a grayscale one."""
    rng = np.random.default_rng(1)
    return {
        "wide": rng.integers(0, 256, (90, 140, 3), dtype=np.uint8),
        "tall": rng.integers(0, 256, (300, 64, 3), dtype=np.uint8),
        "gray": rng.integers(0, 256, (120, 100, 1), dtype=np.uint8),
    }


@pytest.fixture(scope="module")
def expected(model, raw_images):
    """Our `predict` path's probabilities (grayscale read as RGB, as image files are)."""
    rgb = [
        np.repeat(image, 3, -1) if image.shape[-1] == 1 else image for image in raw_images.values()
    ]
    return dict(zip(raw_images, Ensemble(model).predict(rgb)))


def run_plain(format, folder):
    """Run the export in `folder` with its runtime alone, in a fresh process."""
    script = SCRIPT.format(runtime=RUNTIMES[format][1])
    result = subprocess.run(
        [sys.executable, "-c", script, str(folder)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("format", list(FORMATS))
def test_each_format_answers_as_predict_in_a_process_without_the_package(
    format, model, raw_images, expected, tmp_path
):
    require_format(format)
    np.savez(tmp_path / "images.npz", **raw_images)
    folder = export(model, tmp_path / format, format)
    assert json.loads((folder / "export.json").read_text())["format"] == format

    outputs = run_plain(format, folder)
    for name, probabilities in outputs["probabilities"].items():
        np.testing.assert_allclose(probabilities, expected[name], atol=TOLERANCE, err_msg=name)
        assert np.argmax(probabilities) == np.argmax(expected[name])
    assert outputs["labels"] == CLASS_NAMES
    if format == "saved_model":
        assert outputs["class_names"] == CLASS_NAMES
        np.testing.assert_allclose(outputs["gray_direct"], expected["gray"], atol=TOLERANCE)
        np.testing.assert_allclose(
            outputs["encoded"], [expected["gray"], expected["wide"]], atol=TOLERANCE
        )
    # Our own runtime reads it back alike.
    ours = load_exported(folder).predict(list(raw_images.values()))
    np.testing.assert_allclose(ours, list(expected.values()), atol=TOLERANCE)


def test_the_preprocessing_is_predicts_crop_and_scaling(raw_images):
    """The exported preprocessing, on a batch, is the evaluation's single crop, image by image."""
    from keras_inception.evaluation import CentralCrop
    from keras_inception.imagenet import preprocess_input

    image = raw_images["tall"]
    batch = RawImagePreprocessing((75, 75))(tf.constant(np.stack([image, image[::-1]])))
    for got, source in zip(batch.numpy(), [image, image[::-1]]):
        np.testing.assert_array_equal(got, preprocess_input(CentralCrop()(source, (75, 75)))[0])


@pytest.mark.slow
def test_the_float_input_export_is_the_network_with_a_softmax(
    model, raw_images, expected, tmp_path
):
    folder = export(model, tmp_path / "float", "saved_model", raw_images=False)
    x = helpers.images(2)
    served = tf.saved_model.load(str(folder)).signatures["serving_default"]
    got = served(images=tf.constant(x))["probabilities"].numpy()
    np.testing.assert_allclose(got, keras.ops.softmax(helpers.run(model, x)), atol=TOLERANCE)
    # Our runtime cuts and scales raw images for it, as the raw-image export does inside.
    images = list(raw_images.values())
    np.testing.assert_allclose(
        load_exported(folder).predict(images), list(expected.values()), atol=TOLERANCE
    )
    with pytest.raises(ValueError, match="float input has the model's"):
        export(model, tmp_path / "other", "onnx", raw_images=False, image_size=(80, 80))


@pytest.mark.slow
def test_a_fixed_image_size_is_the_static_input_shape(model, raw_images, expected, tmp_path):
    openvino = pytest.importorskip("openvino", reason="needs openvino (pip install -e '.[export]')")
    folder = export(model, tmp_path / "fixed", "openvino", image_size=(90, 140))
    (source,) = openvino.Core().read_model(str(folder / "model.xml")).inputs
    assert str(source.get_partial_shape()) == "[?,90,140,3]"
    exported = load_exported(folder)
    np.testing.assert_allclose(
        exported.predict([raw_images["wide"]])[0], expected["wide"], atol=TOLERANCE
    )
    # Compiled again for a batch of two; an image of another size is refused, not resized.
    wide = raw_images["wide"]
    np.testing.assert_allclose(
        exported.run(np.stack([wide, wide])), [expected["wide"]] * 2, atol=TOLERANCE
    )
    with pytest.raises(ValueError, match=r"takes input of shape \[\?,90,140,3\], got \[1, 300"):
        exported.predict([raw_images["tall"]])


def test_an_export_never_leaves_a_half_written_folder(model, tmp_path, monkeypatch):
    existing = tmp_path / "served"
    existing.mkdir()
    (existing / "keep.txt").write_text("old")
    with pytest.raises(FileExistsError, match="served already exists"):
        export(model, existing, "onnx")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(formats._WRITERS, "onnx", fail)
    with pytest.raises(OSError, match="No space left"):
        export(model, existing, "onnx", overwrite=True)
    assert [path.name for path in tmp_path.iterdir()] == ["served"]
    assert (existing / "keep.txt").read_text() == "old"
    with pytest.raises(ValueError, match="Unknown export format 'tflite'"):
        export(model, tmp_path / "x", "tflite")


def test_a_folder_that_is_no_export_is_named(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path} is not a keras-inception export"):
        load_exported(tmp_path)


def test_the_command_offers_the_packages_formats(capsys):
    """The command spells the formats out (so that --help needs no TensorFlow): the same ones."""
    with pytest.raises(SystemExit):
        cli.main(["export", "--help"])
    assert "{" + ",".join(FORMATS) + "}" in capsys.readouterr().out


@pytest.mark.slow
def test_export_then_predict_exported_prints_what_predict_prints(
    model, raw_images, tmp_path, capsys
):
    require_format("onnx")
    saved = tmp_path / "model.keras"
    model.save(saved)
    image = tmp_path / "wide.png"
    image.write_bytes(tf.io.encode_png(raw_images["wide"]).numpy())
    folder = tmp_path / "served"
    assert cli.main(["export", str(saved), str(folder), "--format", "onnx"]) == 0
    assert f"Wrote {folder} (onnx)." in capsys.readouterr().out

    assert cli.main(["predict", "--model", str(saved), "--top", "3", str(image)]) == 0
    direct = capsys.readouterr().out
    assert cli.main(["predict", "--exported", str(folder), "--top", "3", str(image)]) == 0
    assert capsys.readouterr().out == direct
    assert "1. " in direct and CLASS_NAMES[0] in direct

    assert cli.main(["export", str(saved), str(folder)]) == cli.BAD_INPUT_STATUS
    assert "already exists" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_export_command_writes_nothing_but_its_result(model, tmp_path):
    """No converter noise on the console: tf2onnx's is the one that spoke."""
    require(*CONVERTERS["onnx"])
    saved = tmp_path / "model.keras"
    model.save(saved)
    folder = tmp_path / "served"
    command = [sys.executable, "-m", "keras_inception_cli", "export", str(saved), str(folder)]
    as_a_user_runs_it = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [*command, "--format", "onnx"],
        capture_output=True,
        text=True,
        timeout=600,
        env=as_a_user_runs_it,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == f"Wrote {folder} (onnx).\n"
    assert result.stderr == ""


@pytest.mark.slow
@pytest.mark.parametrize("spec", helpers.network_params())
def test_every_network_converts_with_builtin_operators_only(spec, raw_images, tmp_path):
    """LiteRT is the strictest converter (no TensorFlow fallback ops in its interpreter): each
    network, its residual scaling and fused batch norm included, converts and answers alike."""
    network = spec.factory(
        weights=None,
        input_shape=(helpers.SMALL, helpers.SMALL, 3),
        classes=3,
        depths=helpers.TINY_DEPTHS,
    )
    helpers.randomise(network)
    images = [raw_images["wide"], raw_images["tall"]]
    folder = export(network, tmp_path / spec.name, "litert")
    np.testing.assert_allclose(
        load_exported(folder).predict(images), Ensemble(network).predict(images), atol=TOLERANCE
    )
