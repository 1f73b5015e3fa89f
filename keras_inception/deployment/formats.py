"""`export`: a model written as a servable artefact in one folder, with its class names and a
description of its input (`export.json`), whole or not at all."""

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import keras
import tensorflow as tf

from keras_inception.deployment.serving import decode_image, serving_model, to_rgb
from keras_inception.imagenet import class_labels
from keras_inception.models.class_names import class_names

# Each format and the file in the export folder that holds the network (a SavedModel is the
# folder itself; OpenVINO's weights sit beside its .xml in model.bin).
FORMATS = {
    "saved_model": ".",
    "litert": "model.tflite",
    "onnx": "model.onnx",
    "openvino": "model.xml",
}
METADATA_FILE = "export.json"
LABELS_FILE = "labels.txt"
INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"


def export(
    model, output, format="saved_model", *, raw_images=True, image_size=None, overwrite=False
):
    """Write `model` (a Keras model) to the folder `output` in `format` (one of `FORMATS`), and
    return the folder's path.

    With `raw_images` (the default) the exported function takes uint8 RGB images [N, H, W, 3]
    of any height and width (or of `image_size`, for runtimes that want a static shape), cuts
    and scales them as `predict` does, and returns probabilities [N, classes]; a SavedModel
    also takes grayscale [N, H, W, 1] images, encoded image files (`serve_encoded`) and returns
    its class names (`class_names`). Otherwise it takes the network's float input in [-1, 1].
    Beside the network, `labels.txt` holds one class name per line and `export.json` the rest.

    The folder appears only once it is complete; an existing one is replaced only with
    `overwrite`.
    """
    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; choose one of {', '.join(FORMATS)}.")
    output = Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} already exists; choose another folder or overwrite it.")
    if image_size is not None and not raw_images:
        raise ValueError("image_size sets the size of raw images; the float input has the model's.")
    serving = serving_model(model, raw_images, image_size)
    labels = class_labels(serving.outputs[0].shape[-1], class_names(model))
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    try:
        _WRITERS[format](serving, staging, labels, raw_images)
        (staging / LABELS_FILE).write_text("".join(f"{label}\n" for label in labels), "utf-8")
        metadata = {
            "format": format,
            "file": FORMATS[format],
            "input": "uint8 images" if raw_images else "float [-1, 1]",
            "input_name": INPUT_NAME,
            "input_shape": list(serving.inputs[0].shape[1:]),
            "output_name": OUTPUT_NAME,
            "classes": len(labels),
            "model": model.name,
        }
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", "utf-8")
        _move_into_place(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output


def _input_spec(serving, channels=3):
    shape = serving.inputs[0].shape
    return tf.TensorSpec([None, *shape[1:3], channels], serving.inputs[0].dtype, name=INPUT_NAME)


def _write_saved_model(serving, folder, labels, raw_images):
    """Keras's ExportArchive with three endpoints: `serving_default` (images, grayscale too when
    raw), `serve_encoded` (encoded image files, each its own size) and `class_names`."""
    archive = keras.export.ExportArchive()
    archive.track(serving)
    if raw_images:
        serve = tf.function(
            lambda images: {OUTPUT_NAME: serving(to_rgb(images))},
            input_signature=[_input_spec(serving, channels=None)],
        )
        serve_encoded = tf.function(
            lambda encoded: {
                OUTPUT_NAME: tf.map_fn(
                    lambda file: serving(decode_image(file)[None])[0],
                    encoded,
                    fn_output_signature=tf.float32,
                )
            },
            input_signature=[tf.TensorSpec([None], tf.string, name="encoded")],
        )
        archive.add_endpoint("serve_encoded", serve_encoded)
    else:
        serve = tf.function(
            lambda images: {OUTPUT_NAME: serving(images)}, input_signature=[_input_spec(serving)]
        )
    archive.add_endpoint("serving_default", serve)
    archive.add_endpoint(
        "class_names", tf.function(lambda: tf.constant(labels), input_signature=[])
    )
    archive.write_out(str(folder), verbose=False)


def _keras_writer(format):
    """A writer through Keras's `Model.export`, whose format names are ours."""

    def write(serving, folder, labels, raw_images):
        with warnings.catch_warnings():
            # Keras's tf2onnx patch asks NumPy 2 for `np.object`, and NumPy warns the asker.
            warnings.filterwarnings("ignore", "In the future `np.object`", FutureWarning)
            serving.export(
                str(folder / FORMATS[format]),
                format=format,
                input_signature=[_input_spec(serving)],
                verbose=False,
            )

    return write


_WRITERS = {
    "saved_model": _write_saved_model,
    **{format: _keras_writer(format) for format in ("litert", "onnx", "openvino")},
}


def _move_into_place(staging, output):
    """Rename the finished `staging` folder to `output`; a folder already there is moved aside
    first and deleted only once the new one is in place."""
    if not output.exists():
        os.replace(staging, output)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=output.parent))
    os.replace(output, aside / output.name)
    os.replace(staging, output)
    shutil.rmtree(aside, ignore_errors=True)
