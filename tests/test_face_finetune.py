"""Fine-tuning a FaceNet embedding on your own identities, as facenet's train_softmax.py: a
softmax over the identities on the bottleneck, trained through the recipe layer, then dropped so
that the run's model.keras outputs the unit embeddings."""

import helpers
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_inception import InceptionResNetV1, faces
from keras_inception.training import build_model, load_recipe, train
from keras_inception.training.finetune import set_trainable
from keras_inception.training.trainer import final_model, load_recipe_weights
from keras_inception_cli import main

TINY = dict(weights=None, input_shape=(75, 75, 3), depths=(1, 1, 1), embedding_size=16)
IDENTITIES = {"ann": (220, 40, 40), "bob": (40, 200, 60), "cy": (50, 60, 230)}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A seeded tiny IR-v1 embedding model and its .keras file."""
    model = helpers.randomise(InceptionResNetV1(**TINY), seed=3)
    folder = tmp_path_factory.mktemp("source")
    model.save(folder / "facenet.keras")
    return model, folder


@pytest.fixture(scope="module")
def identities(tmp_path_factory):
    """Six PNG 'faces' per identity: its colour in stripes of a random phase, plus noise."""
    root = tmp_path_factory.mktemp("identities")
    rng = np.random.default_rng(0)
    rows = np.arange(80)[:, None, None]
    for name, colour in IDENTITIES.items():
        (root / name).mkdir()
        for index in range(6):
            stripes = (rows + rng.integers(0, 16)) % 16 < 8
            pixels = np.where(stripes, colour, 255 - np.array(colour)) + rng.normal(
                0, 20, (80, 80, 3)
            )
            image = np.clip(pixels, 0, 255).astype(np.uint8)
            tf.io.write_file(str(root / name / f"{index}.png"), tf.io.encode_png(image))
    return root


def write_recipe(path, weights, data, finetune):
    path.write_text(
        f"""
[model]
network = "inception_resnet_v1"
input_size = 75
depths = [1, 1, 1]
embedding_size = 16
weights = "{weights}"

[data]
source = "folder"
train = "{data}"
validation_split = 0.25
min_crop_area = 0.5

[training]
batch_size = 6
epochs = 1
steps_per_epoch = 2
precision = "float32"

[optimizer]
learning_rate = 0.01

[detector]
probe_size = 4

[finetune]
{finetune}
"""
    )
    return load_recipe(path)


def test_the_identity_classifier_is_a_new_head_on_the_loaded_embedding(
    source, identities, tmp_path
):
    start, folder = source
    recipe = write_recipe(tmp_path / "faces.toml", folder / "facenet.keras", identities, "")
    model = build_model(recipe.model, len(IDENTITIES), list(IDENTITIES))
    report = load_recipe_weights(model, recipe.model)
    assert report.loaded_heads == ("Bottleneck",) and list(report.new_heads) == ["Logits"]
    # "head" trains the embedding with the classifier: the classifier alone would leave the
    # saved model exactly the weights it started from.
    trained = set_trainable(model, "head", recipe.model.network)
    assert sorted(trained) == ["Bottleneck", "Bottleneck__BatchNorm", "Logits"]
    images = helpers.images(2, 75)
    assert helpers.run(model, images).shape == (2, len(IDENTITIES))
    embeddings = final_model(model)
    assert "Logits" not in [layer.name for layer in embeddings.layers]
    np.testing.assert_allclose(
        helpers.run(embeddings, images), helpers.run(start, images), atol=1e-6
    )


@pytest.mark.slow
def test_a_face_run_trains_the_identities_and_saves_the_embedding_model(
    source, identities, tmp_path, capsys
):
    start, folder = source
    weights = folder / "facenet.keras"
    recipe = write_recipe(tmp_path / "faces.toml", weights, identities, 'trainable = "all"')
    run = tmp_path / "run"
    result = train(recipe, output=run, verbose=0)

    # It trained as a classifier over the identities, validated by top-1, and its checkpoint
    # keeps the classifier to resume from.
    assert len(result.history["val_top1"]) == 1
    checkpoint = keras.saving.load_model(run / "checkpoints" / "epoch_001.keras")
    assert checkpoint.get_layer("Logits").output.shape[-1] == len(IDENTITIES)

    # The final model is the embedding model: unit 16-d embeddings, no classifier.
    final = keras.saving.load_model(run / "model.keras")
    assert [layer.name for layer in final.layers if layer.name in ("Logits", "class_names")] == []
    embeddings = helpers.run(final, helpers.images(3, 75))
    assert embeddings.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert train(recipe, output=run).model.output.shape[-1] == 16  # a finished run's model

    weights = {v.path: v.numpy() for v in final.weights}
    changed = {
        layer.name
        for layer in start.layers
        for v in layer.weights
        if not np.array_equal(v.numpy(), weights[v.path])
    }
    assert {"Conv2d_1a_3x3", "Bottleneck"} <= changed

    capsys.readouterr()
    output = tmp_path / "faces.npy"
    assert main(["embed", "--model", str(run), str(identities), "-o", str(output)]) == 0
    paths, embedded = faces.read_embeddings(output)
    assert embedded.shape == (18, 16) and len(paths) == 18
