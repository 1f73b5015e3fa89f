"""Exported artefacts read back with each format's own runtime (TensorFlow, LiteRT, ONNX Runtime,
OpenVINO), for `predict --exported` and the serving benchmark: what a user's server would run."""

import functools
import json
from pathlib import Path

import numpy as np

from keras_inception.deployment.formats import FORMATS, LABELS_FILE, METADATA_FILE
from keras_inception.deployment.serving import RawImagePreprocessing
from keras_inception.errors import require

# Each compiled shape holds its own weights and buffers (about 0.3 GB for Inception-ResNet-v2).
OPENVINO_SHAPES_KEPT = 4


class ExportedModel:
    """An export folder (written by `export`) ready to run: `predict(images)` returns
    probabilities [N, classes], `class_names` the labels that came with it.

    `precision` "float32" computes as the network was exported; "auto" lets the runtime choose
    its fastest arithmetic (OpenVINO then runs in bfloat16 on CPUs that have it).
    """

    def __init__(self, folder, precision="float32"):
        self.folder = Path(folder)
        try:
            self.metadata = json.loads((self.folder / METADATA_FILE).read_text("utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(
                f"{folder} is not a keras-inception export: cannot read its {METADATA_FILE} "
                f"({error})."
            ) from None
        if precision not in ("float32", "auto"):
            raise ValueError(f"precision must be 'float32' or 'auto', got {precision!r}.")
        self.format = self.metadata.get("format")
        if self.format not in _RUNNERS:
            raise ValueError(f"{folder}: {METADATA_FILE} names an unknown format {self.format!r}.")
        self.class_names = (self.folder / LABELS_FILE).read_text("utf-8").splitlines()
        # A float-input export gets its images cut and scaled here, as a raw-image one inside.
        raw_images = self.metadata["input"] == "uint8 images"
        self._prepare = (
            None if raw_images else RawImagePreprocessing(self.metadata["input_shape"][:2])
        )
        self.run = _RUNNERS[self.format](self.folder / FORMATS[self.format], precision)

    def predict(self, images):
        """Probabilities [N, classes] of uint8 RGB (or grayscale) images [H, W, C] of any sizes,
        one at a time. A float-input export gets them cut and scaled here, as the raw-image
        export does inside."""
        batches = [_rgb_batch(image) for image in images]
        if self._prepare is not None:
            batches = [np.asarray(self._prepare(batch), dtype="float32") for batch in batches]
        return np.concatenate([self.run(batch) for batch in batches])


def load_exported(folder, precision="float32"):
    """The `ExportedModel` in `folder`."""
    return ExportedModel(folder, precision)


def _rgb_batch(image):
    image = np.asarray(image, dtype="uint8")
    if image.ndim == 2:
        image = image[..., None]
    return np.repeat(image, 3, axis=-1)[None] if image.shape[-1] == 1 else image[None]


def _saved_model(path, precision):
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    return lambda batch: serve(tf.constant(batch))["probabilities"].numpy()


def _litert(path, precision):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # TensorFlow's own copy of the interpreter
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=str(path))
    (source,) = interpreter.get_input_details()
    (result,) = interpreter.get_output_details()

    def run(batch):
        if tuple(interpreter.get_input_details()[0]["shape"]) != batch.shape:
            interpreter.resize_tensor_input(source["index"], batch.shape)
            interpreter.allocate_tensors()  # plans memory for the shape: only when it changes
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        return interpreter.get_tensor(result["index"])

    return run


def _onnx(path, precision):
    onnxruntime = require("onnxruntime", "Running an ONNX export", "onnxruntime")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})[0]


def _openvino(path, precision):
    """OpenVINO compiles the network for each input shape it is given (the last few kept): its
    CPU plugin ran Inception-ResNet-v2 at batch 8 about twice as fast with a static shape as
    with the export's dynamic one (docs/deployment.md)."""
    openvino = require("openvino", "Running an OpenVINO export", "openvino")
    config = {"INFERENCE_PRECISION_HINT": "f32"} if precision == "float32" else {}
    core = openvino.Core()
    network = core.read_model(str(path))
    declared = network.input().get_partial_shape()  # before a reshape fixes it

    @functools.lru_cache(maxsize=OPENVINO_SHAPES_KEPT)
    def compiled_for(shape):
        if not declared.compatible(openvino.PartialShape(list(shape))):
            raise ValueError(f"{path} takes input of shape {declared}, got {list(shape)}.")
        network.reshape(list(shape))
        return core.compile_model(network, "CPU", config)

    def run(batch):
        compiled = compiled_for(batch.shape)
        return compiled(batch)[compiled.output(0)]

    return run


# Each takes the network's file and the precision; only OpenVINO has a faster one to choose on
# a CPU (the others run float32 as exported).
_RUNNERS = {"saved_model": _saved_model, "litert": _litert, "onnx": _onnx, "openvino": _openvino}
