"""Class names that travel inside a model: an identity layer on the main output whose config
holds them, so a saved `.keras` file, a copy of it and an export all still know what each output
index means."""

import keras

LAYER_NAME = "class_names"


@keras.saving.register_keras_serializable(package="keras_inception")
class ClassNames(keras.layers.Layer):
    """Pass the classifier's output through unchanged; `names[i]` is the name of output `i`."""

    def __init__(self, names, **kwargs):
        super().__init__(**kwargs)
        self.names = tuple(str(name) for name in names)

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def build(self, input_shape):
        if input_shape[-1] != len(self.names):
            raise ValueError(
                f"{len(self.names)} class names for a classifier of {input_shape[-1]} classes."
            )

    def get_config(self):
        return {**super().get_config(), "names": list(self.names)}


def with_class_names(model, names):
    """`model` (same layers and weights) with `names` on its main output."""
    outputs = list(model.outputs)
    outputs[0] = ClassNames(names, name=LAYER_NAME, dtype=outputs[0].dtype)(outputs[0])
    return keras.Model(model.inputs, outputs if len(outputs) > 1 else outputs[0], name=model.name)


def class_names(model):
    """The class names a model carries, or None."""
    for layer in model.layers:
        if isinstance(layer, ClassNames):
            return list(layer.names)
    return None


def output_layer(model):
    """The layer that computes the model's main output, looking through `ClassNames`."""
    output = model.outputs[0]
    (layer,) = [layer for layer in model.layers if layer.output is output]
    if isinstance(layer, ClassNames):
        (layer,) = [other for other in model.layers if other.output is layer.input]
    return layer
