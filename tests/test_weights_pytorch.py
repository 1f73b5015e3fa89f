"""Parity with the PyTorch implementations: seeded timm `inception_v4` / `inception_resnet_v2` and
facenet-pytorch `InceptionResnetV1`, their BN statistics randomised so that BN is not an identity,
converted into our models; outputs compared on the same images. A TF-slim checkpoint written from
the timm weights under slim's names converts to the same logits.

Needs PyTorch, timm and facenet-pytorch (installed by .ci/run); skipped without them.
"""

import dataclasses

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.needs_torch

torch = pytest.importorskip("torch", reason="the parity tests compare with PyTorch models")
timm = pytest.importorskip("timm", reason="the parity tests compare with timm's models")

from helpers import images, run, write_slim_checkpoint  # noqa: E402

import keras_inception_cli as cli  # noqa: E402
from keras_inception import InceptionResNetV1  # noqa: E402
from keras_inception.models import get_network  # noqa: E402
from keras_inception.weights import (  # noqa: E402
    WeightsMismatchError,
    assign_weights,
    read_slim_checkpoint,
    read_source,
    read_state_dict,
)
from keras_inception.weights.pytorch import LAYOUTS  # noqa: E402

# Large enough that every stage keeps a spatial extent (the 8x8 stage is 3x3), small enough for CI.
SIZE = 139
# The networks whose PyTorch layout is timm's (facenet-pytorch's IR-v1 is tested on its own).
FACTORIES = {
    name: get_network(name).factory for name, (library, *_) in LAYOUTS.items() if library == "timm"
}


def randomise_batch_norm(module, seed):
    """Random BN statistics and offsets (gamma stays 1, as in every port of the slim weights)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
                size = layer.num_features
                layer.running_mean.copy_(torch.rand(size, generator=generator) * 0.4 - 0.2)
                layer.running_var.copy_(torch.rand(size, generator=generator) * 1.5 + 0.5)
                layer.bias.copy_(torch.randn(size, generator=generator) * 0.1)
    return module.eval()


def torch_outputs(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()


def assert_close(ours, theirs, relative=1e-4):
    """Equal within `relative` of the largest reference magnitude."""
    error = np.max(np.abs(ours - theirs))
    assert error <= relative * np.max(np.abs(theirs)), (
        f"max error {error}, scale {np.max(np.abs(theirs))}"
    )


def trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def torch_count_without_gamma(module):
    """Parameters of a torch model less its BN gammas, which our gamma-free BN does not have."""
    gammas = sum(
        layer.weight.numel()
        for layer in module.modules()
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm)
    )
    return sum(p.numel() for p in module.parameters()) - gammas


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def timm_model(request):
    torch.manual_seed(0)
    module = randomise_batch_norm(timm.create_model(request.param, pretrained=False), 1)
    return request.param, module, torch_outputs(module, images(size=SIZE))


@pytest.fixture(scope="module")
def converted(timm_model):
    architecture, module, _ = timm_model
    model = FACTORIES[architecture](input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    return assign_weights(model, read_state_dict(module.state_dict(), architecture))


def test_timm_logits_match(timm_model, converted):
    _, _, logits = timm_model
    assert_close(run(converted, images(size=SIZE)), logits)


def test_parameter_count_matches_timm(timm_model, converted):
    _, module, _ = timm_model
    assert trainable_count(converted) == torch_count_without_gamma(module)


def test_timm_files_read_like_the_dict(timm_model, tmp_path):
    """.safetensors (read without PyTorch) and .pth give the tensors of the in-memory state dict."""
    from safetensors.torch import save_file

    architecture, module, _ = timm_model
    state = module.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "model.safetensors")
    torch.save(state, tmp_path / "model.pth")
    expected = read_state_dict(state, architecture).tensors
    for name in ("model.safetensors", "model.pth"):
        tensors = read_source(tmp_path / name, architecture).tensors
        assert tensors.keys() == expected.keys()
        assert all(np.array_equal(tensors[k], expected[k]) for k in expected)


@pytest.mark.slow
def test_slim_checkpoint_from_timm_weights(timm_model, tmp_path):
    """A checkpoint with slim's names, shapes and 1001 classes, as the authors' releases have,
    built from the timm weights through the name tables: same logits, background dropped."""
    architecture, module, logits = timm_model
    network = {"inception_v4": "InceptionV4", "inception_resnet_v2": "InceptionResnetV2"}[
        architecture
    ]
    tensors = {
        f"{network}/{k}": v
        for k, v in read_state_dict(module.state_dict(), architecture).tensors.items()
    }
    for suffix, background in (("weights", np.zeros((1536, 1))), ("biases", np.zeros(1))):
        name = f"{network}/Logits/Logits/{suffix}"
        tensors[name] = np.concatenate([background.astype("float32"), tensors[name]], axis=-1)
    tensors["global_step"] = np.array(1, "int64")
    prefix = write_slim_checkpoint(tmp_path / "model.ckpt", tensors)

    model = FACTORIES[architecture](input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    assign_weights(model, read_slim_checkpoint(prefix, architecture))
    assert_close(run(model, images(size=SIZE)), logits)

    other = "inception_resnet_v2" if architecture == "inception_v4" else "inception_v4"
    with pytest.raises(WeightsMismatchError, match="missing from the source") as raised:
        wrong = FACTORIES[other](input_shape=(SIZE, SIZE, 3))
        assign_weights(wrong, read_slim_checkpoint(prefix, other))
    assert "not in the model (unexpected)" in str(raised.value)


# ----------------------------------------------------------------------------- facenet-pytorch


@pytest.fixture(scope="module")
def facenet():
    facenet_pytorch = pytest.importorskip("facenet_pytorch", reason="compares with facenet-pytorch")
    torch.manual_seed(2)
    module = randomise_batch_norm(facenet_pytorch.InceptionResnetV1(classify=False), 3)
    return module, torch_outputs(module, images(size=SIZE))


def facenet_model():
    return InceptionResNetV1(input_shape=(SIZE, SIZE, 3), embedding_size=512)


def test_facenet_embeddings_match(facenet):
    module, embeddings = facenet
    model = assign_weights(
        facenet_model(), read_state_dict(module.state_dict(), "inception_resnet_v1")
    )
    assert_close(run(model, images(size=SIZE)), embeddings)
    assert trainable_count(model) == torch_count_without_gamma(module)


def test_facenet_identity_classifier_is_skipped(facenet):
    """The release files keep the training identities' classifier (`logits`); it has no place in
    the embedding model and is left out, not reported."""
    module, _ = facenet
    state = dict(module.state_dict())
    state["logits.weight"] = torch.zeros(8631, 512)
    state["logits.bias"] = torch.zeros(8631)
    with_logits = read_state_dict(state, "inception_resnet_v1").tensors
    without = read_state_dict(module.state_dict(), "inception_resnet_v1").tensors
    assert with_logits.keys() == without.keys()


@pytest.mark.slow
def test_facenet_named_weights_convert_once(facenet, tmp_path, monkeypatch):
    module, embeddings = facenet
    served = tmp_path / "20180402-114759-vggface2.pt"
    torch.save(module.state_dict(), served)
    (tmp_path / "cache").mkdir()
    entry = dataclasses.replace(
        get_network("inception_resnet_v1").weights["facenet-vggface2"],
        url=served.as_uri(),
        cache_dir=str(tmp_path / "cache"),
    )
    monkeypatch.setitem(get_network("inception_resnet_v1").weights, "facenet-vggface2", entry)
    build = dict(weights="facenet-vggface2", input_shape=(SIZE, SIZE, 3), embedding_size=512)

    assert_close(run(InceptionResNetV1(**build), images(size=SIZE)), embeddings)
    assert (tmp_path / "cache" / "models" / entry.converted_name).exists()
    served.unlink()  # later loads read the converted file
    full = InceptionResNetV1(**build)
    assert_close(run(full, images(size=SIZE)), embeddings)
    pooled = keras.Model(full.input, full.get_layer("Logits__AvgPool").output)
    features = InceptionResNetV1(
        weights="facenet-vggface2", include_top=False, pooling="avg", input_shape=(SIZE, SIZE, 3)
    )
    np.testing.assert_allclose(
        run(features, images(size=SIZE)), run(pooled, images(size=SIZE)), rtol=1e-6, atol=1e-6
    )


def test_convert_command_on_a_facenet_file(facenet, tmp_path):
    """The command reads the embedding size from the file and writes weights that load into
    `InceptionResNetV1(embedding_size=512)`."""
    module, embeddings = facenet
    source = tmp_path / "20180402-114759-vggface2.pt"
    torch.save(module.state_dict(), source)
    output = tmp_path / "facenet.weights.h5"
    assert cli.main(["convert", str(source), "inception_resnet_v1", str(output)]) == 0
    model = InceptionResNetV1(weights=str(output), input_shape=(SIZE, SIZE, 3), embedding_size=512)
    assert_close(run(model, images(size=SIZE)), embeddings)
