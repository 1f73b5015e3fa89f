"""Weight conversion without PyTorch: the strict matcher, TF-slim checkpoints, keras.applications
files, the `weights="imagenet"` download path and the `convert` command.

Sources are written here from seeded models; nothing is downloaded (URLs point at local files).
"""

import dataclasses
import hashlib
import inspect
import tarfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import images, randomise, run, write_slim_checkpoint
from keras.src.applications import inception_resnet_v2 as keras_inception_resnet_v2
from keras.src.legacy.saving import legacy_h5_format

import keras_inception_cli as cli
from keras_inception import (
    InceptionResNetV1,
    InceptionResNetV2,
    InceptionV4,
    decode_predictions,
)
from keras_inception.evaluation import Ensemble
from keras_inception.models import get_network
from keras_inception.weights import (
    Source,
    WeightsMismatchError,
    assign_weights,
    model_tensors,
    read_keras_applications,
    read_slim_checkpoint,
)

SIZE = 75


# ----------------------------------------------------------------------------- the strict matcher


@pytest.fixture(scope="module")
def small_v1():
    """A small seeded Inception-ResNet-v1 with FaceNet's embedding head, and its tensors."""
    model = randomise(
        InceptionResNetV1(input_shape=(SIZE, SIZE, 3), depths=(1, 1, 1), embedding_size=16), 0
    )
    return model, model_tensors(model)


def fresh_small_v1(**kwargs):
    config = dict(input_shape=(SIZE, SIZE, 3), depths=(1, 1, 1), embedding_size=16)
    return InceptionResNetV1(**(config | kwargs))


def test_assign_weights_round_trip(small_v1):
    model, tensors = small_v1
    copy = assign_weights(fresh_small_v1(), Source("copy", tensors))
    np.testing.assert_array_equal(run(copy, images()), run(model, images()))


def test_mismatch_lists_every_problem_and_loads_nothing(small_v1):
    _, tensors = small_v1
    broken = dict(tensors)
    del broken["Conv2d_1a_3x3/weights"]
    broken["Mixed_6a/Branch_0/Conv2d_1a_3x3/weights"] = np.zeros((1, 1, 1, 1), "float32")
    broken["Nowhere/weights"] = np.zeros(3, "float32")
    broken["Conv2d_2a_3x3/BatchNorm/gamma"] = np.full(32, 2.0, "float32")
    target = fresh_small_v1()
    before = model_tensors(target)
    with pytest.raises(WeightsMismatchError) as raised:
        assign_weights(target, Source("broken source", broken))
    message = str(raised.value)
    assert "broken source" in message and "nothing was loaded" in message
    assert "1 missing from the source:\n  Conv2d_1a_3x3/weights" in message
    assert "1 not in the model (unexpected):\n  Nowhere/weights" in message
    assert (
        "Mixed_6a/Branch_0/Conv2d_1a_3x3/weights: source (1, 1, 1, 1), model (3, 3, 256, 384)"
        in message
    )
    assert "gamma not all ones" in message and "Conv2d_2a_3x3/BatchNorm/gamma" in message
    after = model_tensors(target)
    assert all(np.array_equal(before[name], after[name]) for name in before)


def test_unit_gamma_tolerated_and_absent_heads_skipped(small_v1):
    model, tensors = small_v1
    with_extras = dict(tensors)
    with_extras["Conv2d_1a_3x3/BatchNorm/gamma"] = np.ones(32, "float32")
    # A classifier head the embedding-free, top-free model does not have.
    with_extras["AuxLogits/Logits/weights"] = np.zeros((768, 10), "float32")
    features = fresh_small_v1(include_top=False, pooling="avg")
    assign_weights(features, Source("with extras", with_extras))
    expected = keras.Model(model.input, model.get_layer("Logits__AvgPool").output)
    np.testing.assert_allclose(run(features, images()), run(expected, images()), rtol=1e-6)


# ----------------------------------------------------------------------------- TF-slim checkpoints


@pytest.fixture(scope="module")
def small_v4_checkpoint(tmp_path_factory):
    """A small seeded Inception-v4 with a 1001-class top and its slim checkpoint (with training
    state slim and FaceNet checkpoints carry: global_step, optimizer slots, another scope)."""
    model = randomise(
        InceptionV4(
            input_shape=(SIZE, SIZE, 3), depths=(1, 1, 1), classes=1001, classifier_activation=None
        ),
        1,
    )
    tensors = {f"InceptionV4/{name}": array for name, array in model_tensors(model).items()}
    tensors["InceptionV4/Conv2d_1a_3x3/BatchNorm/gamma"] = np.ones(32, "float32")
    tensors["InceptionV4/Conv2d_1a_3x3/weights/RMSProp"] = np.zeros((3, 3, 3, 32), "float32")
    tensors["global_step"] = np.array(90000, "int64")
    tensors["Logits/weights"] = np.zeros((8, 4), "float32")
    prefix = write_slim_checkpoint(tmp_path_factory.mktemp("slim") / "model.ckpt-90000", tensors)
    return model, prefix


def test_slim_checkpoint_drops_background_class(small_v4_checkpoint):
    model, prefix = small_v4_checkpoint
    ours = InceptionV4(input_shape=(SIZE, SIZE, 3), depths=(1, 1, 1), classifier_activation=None)
    assign_weights(ours, read_slim_checkpoint(prefix, "inception_v4"))
    expected = run(model, images())[:, 1:]
    np.testing.assert_allclose(run(ours, images()), expected, rtol=1e-5, atol=1e-6)


def test_slim_checkpoint_keeps_1001_classes_when_asked(small_v4_checkpoint):
    model, prefix = small_v4_checkpoint
    ours = InceptionV4(
        input_shape=(SIZE, SIZE, 3), depths=(1, 1, 1), classes=1001, classifier_activation=None
    )
    assign_weights(ours, read_slim_checkpoint(prefix, "inception_v4"))
    np.testing.assert_allclose(run(ours, images()), run(model, images()), rtol=1e-5, atol=1e-6)


def test_slim_checkpoint_of_another_network_fails_with_the_listing(small_v4_checkpoint):
    _, prefix = small_v4_checkpoint
    other = InceptionResNetV2(input_shape=(SIZE, SIZE, 3), depths=(1, 1, 1))
    with pytest.raises(WeightsMismatchError) as raised:
        assign_weights(other, read_slim_checkpoint(prefix, "inception_resnet_v2"))
    message = str(raised.value)
    assert "of InceptionV4 (not InceptionResnetV2)" in message
    assert (
        "missing from the source" in message and "Mixed_5b/Branch_0/Conv2d_1x1/weights" in message
    )
    assert (
        "not in the model (unexpected)" in message
        and "Mixed_3a/Branch_1/Conv2d_0a_3x3/weights" in message
    )


# ----------------------------------------------------------------------------- keras.applications


@pytest.fixture(scope="module")
def keras_applications_files(tmp_path_factory):
    """A seeded keras.applications InceptionResNetV2 (top and notop) saved as legacy HDF5: weights
    only (the layout of the public file) and the whole top model."""
    folder = tmp_path_factory.mktemp("keras_applications")
    keras.utils.set_random_seed(2)
    files = {}
    for include_top in (True, False):
        model = keras.applications.InceptionResNetV2(
            weights=None,
            include_top=include_top,
            input_shape=(SIZE, SIZE, 3),
            classifier_activation=None,
        )
        randomise(model, 3)
        path = folder / f"inception_resnet_v2_{'top' if include_top else 'notop'}.h5"
        with h5py.File(path, "w") as file:
            legacy_h5_format.save_weights_to_hdf5_group(file, model)
        files[include_top] = (model, path)
    whole = folder / "whole_model.h5"
    files[True][0].save(whole)
    files["whole"] = (files[True][0], whole)
    return files


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind", [True, False, "whole"], ids=["weights-top", "weights-notop", "whole-model"]
)
def test_keras_applications_file_loads_with_equal_outputs(keras_applications_files, kind):
    reference, path = keras_applications_files[kind]
    include_top = kind is not False
    ours = InceptionResNetV2(
        include_top=include_top, input_shape=(SIZE, SIZE, 3), classifier_activation=None
    )
    assign_weights(ours, read_keras_applications(path))
    np.testing.assert_allclose(run(ours, images()), run(reference, images()), rtol=1e-5, atol=1e-5)


def test_keras_applications_file_of_another_network_is_refused(tmp_path):
    model = keras.applications.MobileNet(weights=None, input_shape=(128, 128, 3))
    path = tmp_path / "mobilenet.h5"
    with h5py.File(path, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, model)
    with pytest.raises(ValueError, match="a file of another network"):
        read_keras_applications(path)


# ----------------------------------------------------------------------------- weights="imagenet"


def test_registry_pins_the_keras_applications_file():
    """The URL and md5 of the Inception-ResNet-v2 entry are keras.applications' own."""
    entry = get_network("inception_resnet_v2").weights["imagenet"]
    source = inspect.getsource(keras_inception_resnet_v2)
    base, fname = entry.url.rsplit("/", 1)
    assert f'"{fname}"' in source and f'file_hash="{entry.md5}"' in source
    assert keras_inception_resnet_v2.BASE_WEIGHT_URL.rstrip("/") == base


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_imagenet_weights_download_cache_and_hash(
    keras_applications_files, tmp_path, monkeypatch, capsys
):
    reference, original = keras_applications_files[True]
    served = tmp_path / "served" / "inception_resnet_v2_weights.h5"
    served.parent.mkdir()
    served.write_bytes(original.read_bytes())
    (tmp_path / "cache").mkdir()  # Keras falls back to /tmp/.keras for a folder it cannot write
    entry = dataclasses.replace(
        get_network("inception_resnet_v2").weights["imagenet"],
        url=served.as_uri(),
        md5=md5(served),
        cache_dir=str(tmp_path / "cache"),
    )
    monkeypatch.setitem(get_network("inception_resnet_v2").weights, "imagenet", entry)
    build = dict(input_shape=(SIZE, SIZE, 3), classifier_activation=None)

    model = InceptionResNetV2(weights="imagenet", **build)
    expected = run(reference, images())
    np.testing.assert_allclose(run(model, images()), expected, rtol=1e-5, atol=1e-5)
    assert (tmp_path / "cache" / "models" / served.name).exists()

    served.unlink()  # a second load must come from the cache
    features = InceptionResNetV2(weights="imagenet", include_top=False, input_shape=(SIZE, SIZE, 3))
    assert features.get_layer("Conv2d_7b_1x1").weights[0].numpy().std() > 0

    # predict with the published weights, no model file: ImageNet names, the model's own answer
    # (at the entry's input size, made small here).
    monkeypatch.setitem(
        get_network("inception_resnet_v2").weights,
        "imagenet",
        dataclasses.replace(entry, input_size=SIZE),
    )
    image = tmp_path / "image.png"
    pixels = np.random.default_rng(0).integers(0, 255, (120, 90, 3), dtype=np.uint8)
    tf.io.write_file(str(image), tf.io.encode_png(pixels))
    command = ["predict", "--network", "inception_resnet_v2", "--weights", "imagenet"]
    assert cli.main([*command, "--top", "1", str(image)]) == 0
    printed = capsys.readouterr().out
    ((wnid, name, _),) = decode_predictions(Ensemble(model).predict([pixels]), top=1)[0]
    assert f"1. {name} ({wnid})" in printed
    assert cli.main([*command[:3], "--weights", "nope", str(image)]) == cli.BAD_INPUT_STATUS
    assert "publishes imagenet" in capsys.readouterr().err

    served.write_bytes(original.read_bytes())
    (tmp_path / "other_cache").mkdir()
    mismatch = dataclasses.replace(entry, md5="0" * 32, cache_dir=str(tmp_path / "other_cache"))
    monkeypatch.setitem(get_network("inception_resnet_v2").weights, "imagenet", mismatch)
    with pytest.raises(ValueError, match="hash does not match"):
        InceptionResNetV2(weights="imagenet", **build)


def test_imagenet_weights_need_1000_classes():
    with pytest.raises(ValueError, match="classes` should be 1000"):
        InceptionV4(weights="imagenet", classes=10)


def test_unknown_weights_keep_the_keras_message():
    with pytest.raises(
        ValueError, match=r"either `None` \(random initialization\), 'imagenet', or the path"
    ):
        InceptionResNetV2(weights="imagenet21k")
    with pytest.raises(ValueError, match="'facenet-vggface2', 'facenet-casia'"):
        InceptionResNetV1(weights="facenet")


def test_facenet_weights_need_the_embedding_head():
    with pytest.raises(ValueError, match="512-d embedding head"):
        InceptionResNetV1(weights="facenet-vggface2")


@pytest.mark.slow
def test_inception_v4_imagenet_converts_the_slim_tarball_once(tmp_path, monkeypatch):
    """Inception-v4's ImageNet weights are a slim tarball (1001 classes, auxiliary head): converted
    on first use into a cached .weights.h5 that later loads read instead."""
    full = randomise(
        InceptionV4(weights=None, aux_logits=True, classes=1001, classifier_activation=None), 4
    )
    folder = tmp_path / "tarball"
    folder.mkdir()
    tensors = {f"InceptionV4/{name}": array for name, array in model_tensors(full).items()}
    write_slim_checkpoint(folder / "inception_v4.ckpt", tensors)
    (tmp_path / "cache").mkdir()
    archive = tmp_path / "inception_v4_2016_09_09.tar.gz"
    # Stored, not compressed: random weights do not compress, and gzip took 6 s to find that out.
    with tarfile.open(archive, "w:gz", compresslevel=0) as tar:
        for file in folder.iterdir():
            tar.add(file, arcname=file.name)
    entry = dataclasses.replace(
        get_network("inception_v4").weights["imagenet"],
        url=archive.as_uri(),
        cache_dir=str(tmp_path / "cache"),
    )
    monkeypatch.setitem(get_network("inception_v4").weights, "imagenet", entry)

    x = images(size=299)
    logits, aux = run(full, x)
    model = InceptionV4(weights="imagenet", classifier_activation=None)
    assert (tmp_path / "cache" / "models" / entry.converted_name).exists()
    np.testing.assert_allclose(run(model, x), logits[:, 1:], rtol=1e-5, atol=1e-5)

    archive.unlink()  # later loads read the converted file
    with_aux = InceptionV4(weights="imagenet", aux_logits=True, classifier_activation=None)
    for ours, theirs in zip(run(with_aux, x), (logits, aux)):
        np.testing.assert_allclose(ours, theirs[:, 1:], rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- the convert command


@pytest.mark.slow
def test_convert_command_writes_a_loadable_weights_file(keras_applications_files, tmp_path):
    reference, path = keras_applications_files[True]
    output = tmp_path / "converted.weights.h5"
    assert cli.main(["convert", str(path), "inception_resnet_v2", str(output)]) == 0
    model = InceptionResNetV2(
        weights=str(output), input_shape=(SIZE, SIZE, 3), classifier_activation=None
    )
    np.testing.assert_allclose(run(model, images()), run(reference, images()), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_convert_command_reports_a_mismatch_and_keeps_the_output(
    keras_applications_files, tmp_path, capsys
):
    _, path = keras_applications_files[True]
    output = tmp_path / "kept.weights.h5"
    output.write_bytes(b"earlier work")
    status = cli.main(
        ["convert", str(path), "inception_v4", str(output), "--format", "keras-applications"]
    )
    assert status != 0
    assert "publishes Inception-ResNet-v2 only" in capsys.readouterr().err
    assert output.read_bytes() == b"earlier work"


@pytest.mark.parametrize(
    "name, make",
    [
        ("missing.ckpt", None),
        ("missing_folder/", None),
        ("random.ckpt", "bytes"),
        ("random.safetensors", "bytes"),
        ("random.pth", "bytes"),
        ("random.h5", "bytes"),
    ],
)
def test_an_unreadable_source_is_one_line_naming_the_file(tmp_path, capsys, name, make):
    reader = {".safetensors": "safetensors", ".pth": "torch"}.get(Path(name).suffix)
    if make and reader:
        pytest.importorskip(reader, reason=f"reading {name} needs {reader}")
    source = tmp_path / name
    if make:
        source.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    output = tmp_path / "out.weights.h5"
    assert cli.main(["convert", str(source), "inception_resnet_v2", str(output)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(source).rstrip("/") in line and "Traceback" not in line
    assert "weights_only=False" not in line and not output.exists()
