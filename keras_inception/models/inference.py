"""A model as inference alone needs it: batch norms and residual scales folded into the
convolutions before them and, on TensorFlow, the weights frozen into the graph.

Folding turns conv -> batch norm -> ReLU, and a residual block's last convolution -> scaled sum
-> ReLU, into one convolution each, which TensorFlow runs as one fused kernel in bfloat16 too (it
fuses a batch norm into the convolution in float32 only). Freezing makes the weights constants:
oneDNN then reorders each kernel into its own layout once instead of at every call, and a
mixed-precision model casts its weights to 16 bits once. docs/deployment.md has what each saved.
"""

import keras
import numpy as np

from keras_inception.keras_internals import freeze
from keras_inception.models.layers import ResidualScale


@keras.saving.register_keras_serializable(package="keras_inception")
class FoldedBatchNormalization(keras.layers.Layer):
    """Where a batch norm was before `inference_model`: its input, unchanged (the convolution
    before it now applies the norm)."""

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


def inference_model(model):
    """A copy of `model` for inference alone, with two constant factors folded into the
    convolution before them (one without activation, read by the folded layer alone):

    - a batch norm after a convolution without bias (every convolution of the three networks):
      kernel * s and bias beta - mean * s, with s = gamma / sqrt(variance + epsilon); the norm
      becomes a `FoldedBatchNormalization`;
    - a `ResidualScale` whose residual is a convolution (each Inception-ResNet block's last 1x1
      convolution): kernel and bias times the scale; the scaled sum becomes a plain `Add`,
      which TensorFlow fuses into the convolution with the ReLU after it.

    Equal to `model` in inference mode up to float rounding; it cannot train (the batch
    statistics are gone). Other layers, and their weights, are copied as they are.
    """
    norms, scales = _foldable(model)
    replaced = {
        **{norm.name: FoldedBatchNormalization for norm in norms.values()},
        **{scale.name: keras.layers.Add for scale in scales.values()},
    }

    def clone(layer):
        if layer.name in replaced:
            return replaced[layer.name](name=layer.name, dtype=layer.dtype_policy.name)
        config = layer.get_config()
        return layer.__class__.from_config(
            {**config, "use_bias": True} if layer.name in norms else config
        )

    folded = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.name in norms:
            weights = _with_batch_norm(layer, norms[layer.name])
        elif layer.name in scales:
            weights = [weight * scales[layer.name].scale for weight in layer.get_weights()]
        else:
            weights = layer.get_weights()
        if weights and layer.name not in replaced:
            folded.get_layer(layer.name).set_weights(weights)
    return folded


def _foldable(model):
    """({convolution's name: the batch norm that folds into it},
    {convolution's name: the residual scale that folds into it}) among `model.layers`."""
    calls = {layer.name: _single_call(layer) for layer in model.layers}
    producers, readers = {}, {}
    for layer in model.layers:
        output, inputs = calls[layer.name]
        if output is not None:
            producers[id(output)] = layer
        for tensor in inputs:
            readers[id(tensor)] = readers.get(id(tensor), 0) + 1
    norms, scales = {}, {}
    for layer in model.layers:
        _, inputs = calls[layer.name]
        if isinstance(layer, keras.layers.BatchNormalization) and len(inputs) == 1:
            folds, tensor, foldable = norms, inputs[0], layer.axis in (-1, 3)
        elif isinstance(layer, ResidualScale):
            folds, tensor, foldable = scales, inputs[1], True
        else:
            continue
        conv = producers.get(id(tensor))
        if (
            foldable
            and isinstance(conv, keras.layers.Conv2D)
            and conv.data_format == "channels_last"
            and conv.activation is keras.activations.linear
            and readers[id(tensor)] == 1
            and not (folds is norms and conv.use_bias)
        ):
            folds[conv.name] = layer
    return norms, scales


def _single_call(layer):
    """(output, [input tensors]) of a layer called once; (None, []) for one called several times
    or not at all (its inputs and output are not one tensor each)."""
    try:
        return layer.output, keras.tree.flatten(layer.input)
    except (AttributeError, ValueError):
        return None, []


def _with_batch_norm(conv, norm):
    """The kernel and bias of `conv` with `norm` folded in, computed in float64."""
    mean, variance = (np.asarray(v, "float64") for v in (norm.moving_mean, norm.moving_variance))
    gamma = np.asarray(norm.gamma, "float64") if norm.scale else 1.0
    beta = np.asarray(norm.beta, "float64") if norm.center else 0.0
    factor = gamma / np.sqrt(variance + norm.epsilon)
    kernel = np.asarray(conv.kernel, "float64") * factor
    dtype = conv.kernel.dtype
    return [kernel.astype(dtype), (beta - mean * factor).astype(dtype)]


def inference_function(model):
    """`model`'s main output in inference mode as a function of a batch of inputs (an array),
    returning an array: its `inference_model`, with the weights frozen on TensorFlow.

    Building it and its first call take seconds (16-19 for Inception-ResNet-v2 on a 2-core CPU,
    most of it TensorFlow freezing and optimising the graph); each later call is faster than
    Keras's (docs/deployment.md), so it pays where many batches are run. The model's later
    weight changes do not reach it.
    """
    folded = inference_model(model)
    if keras.backend.backend() != "tensorflow":
        return lambda inputs: keras.ops.convert_to_numpy(folded.predict_on_batch(inputs))
    import tensorflow as tf  # only the TensorFlow backend gets here

    (source,) = folded.inputs
    spec = tf.TensorSpec([None, *source.shape[1:]], source.dtype)
    traced = tf.function(lambda inputs: folded(inputs, training=False), autograph=False)
    frozen = freeze(traced.get_concrete_function(spec))

    def run(inputs):
        (outputs, *_) = frozen(tf.convert_to_tensor(inputs, spec.dtype))
        return outputs.numpy()

    return run
