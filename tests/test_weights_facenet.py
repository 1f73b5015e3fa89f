"""Keras-2 FaceNet `.h5` files (nyoki-mtl/keras-facenet's layout), telling them from
keras.applications' by their layer names, and reading TF-slim checkpoints' moving averages.

The `.h5` files are written here with h5py as Keras 2.1 saved that port, from seeded models of
ours renamed the way its converter renamed slim's variables; the whole-model file carries a
`model_config` whose `Lambda` holds bytecode that must never be loaded.
"""

import base64
import json
import marshal
import pickle

import h5py
import numpy as np
import pytest
from helpers import SMALL, TINY_DEPTHS, images, randomise, run, write_slim_checkpoint

import keras_inception_cli as cli
from keras_inception import InceptionResNetV1, InceptionResNetV2
from keras_inception.models.blocks import slim_scope
from keras_inception.models.layers import ResidualScale
from keras_inception.weights import (
    WeightsMismatchError,
    assign_weights,
    model_tensors,
    read_slim_checkpoint,
    read_source,
)
from keras_inception.weights.convert import guess_format

SMALL_V1 = dict(input_shape=(SMALL, SMALL, 3), depths=TINY_DEPTHS, embedding_size=128)
# What Keras 2 marshalled for the port's `scaling` function; running it would raise.
LAMBDA_BYTECODE = base64.b64encode(
    marshal.dumps(compile("raise SystemExit('ran a Lambda from the file')", "scaling", "exec"))
).decode("ascii")


def keras2_name(layer_name):
    """The port's name for one of our layers: slim's scope joined by `_`, the `Repeat` scopes
    dropped (`Repeat_1/block17_1` is `Block17_1`) and the final `Block8` numbered 6."""
    parts = slim_scope(layer_name).split("/")
    if parts[0].startswith("Repeat"):
        parts = [parts[1].capitalize(), *parts[2:]]
    elif parts[0] == "Block8":
        parts[0] = "Block8_6"
    return "_".join(parts)


def keras2_layers(model):
    """(name, {weight name: array}) of each layer of the port's Keras-2 model for `model`: our
    input and each layer under the port's name, each residual scaling as an unnamed `Lambda` and
    `add`, weights named `<layer>/<variable>:0`."""
    yield "input_1", {}
    scalings = 0
    for layer in model.layers[1:]:
        if isinstance(layer, ResidualScale):
            scalings += 1
            yield f"lambda_{scalings}", {}
            yield f"add_{scalings}", {}
        else:
            name = keras2_name(layer.name)
            yield name, {f"{name}/{v.name}:0": v.numpy() for v in layer.weights}


def write_keras2_h5(model, path, whole_model):
    """Save `model` as Keras 2.1 saved the port: every layer listed in `layer_names`, with its
    `weight_names`; a whole model puts them under `model_weights`, beside its JSON
    `model_config`."""
    layers = list(keras2_layers(model))
    with h5py.File(path, "w") as file:
        group = file.create_group("model_weights") if whole_model else file
        for name, weights in layers:
            layer_group = group.create_group(name)
            layer_group.attrs["weight_names"] = [w.encode("utf8") for w in weights]
            for weight, array in weights.items():
                layer_group.create_dataset(weight, data=array)
        group.attrs["layer_names"] = [name.encode("utf8") for name, _ in layers]
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = b"2.1.2"
        if whole_model:
            scales = [layer.scale for layer in model.layers if isinstance(layer, ResidualScale)]
            file.attrs["model_config"] = json.dumps(_model_config(scales)).encode("utf8")
    return path


def _model_config(scales):
    """The port's model config, cut to its `Lambda` layers, as Keras 2 wrote them."""

    def lambda_layer(index, scale):
        config = {
            "name": f"lambda_{index}",
            "function": [LAMBDA_BYTECODE, None, None],
            "function_type": "lambda",
            "arguments": {"scale": scale},
        }
        return {"class_name": "Lambda", "name": config["name"], "config": config}

    layers = [lambda_layer(i, scale) for i, scale in enumerate(scales, start=1)]
    return {"class_name": "Model", "config": {"name": "inception_resnet_v1", "layers": layers}}


def write_names_only_h5(path, layer_names):
    """A legacy Keras `.h5` that has layers of these names and no weights: enough to tell its
    layout."""
    with h5py.File(path, "w") as file:
        for name in layer_names:
            file.create_group(name).attrs["weight_names"] = []
        file.attrs["layer_names"] = [name.encode("utf8") for name in layer_names]
    return path


@pytest.fixture(scope="module")
def facenet_files(tmp_path_factory):
    """A small seeded Inception-ResNet-v1 with a 128-d embedding, saved in the port's layout as a
    whole model (as `facenet_keras.h5`) and as weights only."""
    folder = tmp_path_factory.mktemp("keras_facenet")
    model = randomise(InceptionResNetV1(weights=None, **SMALL_V1), 5)
    files = {
        kind: write_keras2_h5(model, folder / f"{kind}.h5", whole_model=kind == "whole-model")
        for kind in ("whole-model", "weights-only")
    }
    return model, files


@pytest.fixture
def nothing_deserialised(monkeypatch):
    """Fail the test if anything parses JSON, unmarshals bytecode or unpickles while it runs."""

    def refuse(*args, **kwargs):
        raise AssertionError("the reader deserialised part of the file")

    for module in (json, marshal, pickle):
        monkeypatch.setattr(module, "loads", refuse)


@pytest.mark.parametrize("kind", ["whole-model", "weights-only"])
def test_keras_facenet_file_gives_our_embeddings(facenet_files, kind, nothing_deserialised):
    model, files = facenet_files
    assert guess_format(files[kind]) == "keras-facenet"
    source = read_source(files[kind], "inception_resnet_v1")
    assert source.tensors["Bottleneck/weights"].shape == (1792, 128)
    assert "Block8/Conv2d_1x1/biases" in source.tensors  # the port's Block8_6
    ours = assign_weights(InceptionResNetV1(weights=None, **SMALL_V1), source)
    np.testing.assert_allclose(run(ours, images()), run(model, images()), rtol=1e-6, atol=1e-7)


def test_keras_applications_layout_is_told_by_its_names(tmp_path, capsys):
    """keras.applications names its Inception-ResNet-v2 layers after their class: read by
    position, for Inception-ResNet-v2 only."""
    names = ["input_1", "conv2d_1", "batch_normalization_1", "activation_1", "block35_1_conv"]
    path = write_names_only_h5(tmp_path / "inception_resnet_v2.h5", names)
    assert guess_format(path) == "keras-applications"
    output = tmp_path / "out.weights.h5"
    assert cli.main(["convert", str(path), "inception_resnet_v1", str(output)]) == 1
    message = capsys.readouterr().err
    assert f"keras.applications InceptionResNetV2 file '{path}'" in message
    assert "holds no Inception-ResNet-v1 weights" in message and not output.exists()


def test_an_h5_of_neither_layout_is_refused(tmp_path, capsys):
    path = write_names_only_h5(tmp_path / "mobilenet.h5", ["input_1", "conv1", "conv1_bn"])
    with pytest.raises(ValueError, match="neither layout.*begin input_1, conv1, conv1_bn"):
        read_source(path, "inception_resnet_v1")
    output = tmp_path / "out.weights.h5"
    assert cli.main(["convert", str(path), "inception_resnet_v1", str(output)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(path) in line and "neither layout" in line


def test_keras_facenet_file_for_another_network_says_what_it_is(facenet_files, tmp_path, capsys):
    _, files = facenet_files
    with pytest.raises(ValueError, match="holds FaceNet's Inception-ResNet-v1, not Inception-v4"):
        read_source(files["weights-only"], "inception_v4")
    output = tmp_path / "kept.weights.h5"
    output.write_bytes(b"earlier work")
    command = ["convert", str(files["whole-model"]), "inception_resnet_v2", str(output)]
    assert cli.main(command) == 1
    assert "Keras-2 FaceNet file" in capsys.readouterr().err
    assert output.read_bytes() == b"earlier work"


def test_keras2_layout_of_another_network_fails_with_the_listing(tmp_path):
    """The same naming over Inception-ResNet-v2 (Keras-2 ports of it exist) reads, and the strict
    match lists what does not fit."""
    other = InceptionResNetV2(
        weights=None, include_top=False, input_shape=(SMALL, SMALL, 3), depths=TINY_DEPTHS
    )
    path = write_keras2_h5(other, tmp_path / "inception_resnet_v2.h5", whole_model=False)
    source = read_source(path, "inception_resnet_v1")
    with pytest.raises(WeightsMismatchError) as raised:
        assign_weights(InceptionResNetV1(weights=None, **SMALL_V1), source)
    message = str(raised.value)
    assert f"Keras-2 FaceNet file '{path}' does not fit" in message
    assert "missing from the source" in message and "  Conv2d_4b_3x3/weights" in message
    assert "not in the model (unexpected)" in message
    assert "  Mixed_5b/Branch_0/Conv2d_1x1/weights" in message
    assert "  Conv2d_7b_1x1/weights" in message
    assert "with the wrong shape" in message and "Repeat/block35_1/Conv2d_1x1/weights" in message


@pytest.mark.slow
def test_convert_command_converts_a_512d_keras_facenet_file(tmp_path, capsys):
    """The command builds FaceNet's whole network with the file's embedding size."""
    model = randomise(
        InceptionResNetV1(weights=None, input_shape=(SMALL, SMALL, 3), embedding_size=512), 6
    )
    path = write_keras2_h5(model, tmp_path / "facenet512_weights.h5", whole_model=False)
    output = tmp_path / "facenet512.weights.h5"
    assert cli.main(["convert", str(path), "inception_resnet_v1", str(output)]) == 0
    assert "Wrote" in capsys.readouterr().out
    ours = InceptionResNetV1(weights=str(output), input_shape=(SMALL, SMALL, 3), embedding_size=512)
    np.testing.assert_allclose(run(ours, images()), run(model, images()), rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- moving averages


@pytest.fixture(scope="module")
def averaged_checkpoint(facenet_files, tmp_path_factory):
    """A slim checkpoint of the small model whose shadows hold other values than the variables,
    as FaceNet's training leaves them: every variable averaged but BatchNorm's moving statistics.
    Returns the prefix and the tensors `use_ema` should read."""
    model, _ = facenet_files
    raw = model_tensors(model)
    averaged = model_tensors(randomise(InceptionResNetV1(weights=None, **SMALL_V1), 7))
    averaged = {name: a for name, a in averaged.items() if "/moving_" not in name}
    tensors = {f"InceptionResnetV1/{name}": a for name, a in raw.items()} | {
        f"InceptionResnetV1/{name}/ExponentialMovingAverage": a for name, a in averaged.items()
    }
    prefix = tmp_path_factory.mktemp("slim_ema") / "model-20180402-114759.ckpt-275"
    return write_slim_checkpoint(prefix, tensors), raw | averaged


def assert_same_tensors(source, expected):
    assert source.tensors.keys() == expected.keys()
    for name, array in expected.items():
        np.testing.assert_array_equal(source.tensors[name], array, err_msg=name)


def test_use_ema_reads_the_shadows(facenet_files, averaged_checkpoint):
    model, _ = facenet_files
    prefix, expected = averaged_checkpoint
    assert_same_tensors(read_slim_checkpoint(prefix, "inception_resnet_v1"), model_tensors(model))
    source = read_source(prefix, "inception_resnet_v1", use_ema=True)
    assert "moving averages" in source.description
    assert_same_tensors(source, expected)
    assign_weights(InceptionResNetV1(weights=None, **SMALL_V1), source)


def test_use_ema_needs_shadows(facenet_files, tmp_path, capsys):
    model, files = facenet_files
    tensors = {f"InceptionResnetV1/{name}": a for name, a in model_tensors(model).items()}
    prefix = write_slim_checkpoint(tmp_path / "model.ckpt-1", tensors)
    output = str(tmp_path / "out.weights.h5")
    command = ["convert", prefix, "inception_resnet_v1", output, "--use-ema"]
    assert cli.main(command) == 1
    assert f"{prefix}: use_ema reads ExponentialMovingAverage shadows" in capsys.readouterr().err
    with pytest.raises(ValueError, match="this source is read as keras-facenet"):
        read_source(files["weights-only"], "inception_resnet_v1", use_ema=True)
