"""Averaging as in the paper: softmax probabilities averaged over the crops of an image, then over
the networks of an ensemble (optionally weighted).

Members may differ in input size: each sees the same boxes of the original image, resampled to its
own input. Crops reach a model in chunks of at most `batch_size`, packed across images, so 144 crops
of a batch never sit in memory at once.
"""

import itertools
import operator

import keras
import numpy as np

from keras_inception.evaluation.crops import check_image, get_scheme
from keras_inception.imagenet import preprocess_input
from keras_inception.models.class_names import class_names, output_layer
from keras_inception.models.inference import inference_function

# Crops a member runs through Keras before it builds its inference function, on a CPU. Building
# it takes 16-19 s for Inception-ResNet-v2 on a 2-core CPU and each crop after saves about 21 ms
# at batch 8 in bfloat16, 9 ms in float32 (docs/deployment.md): a prediction for a few images
# keeps Keras's quick start, an evaluation gains from one or two thousand crops on. It was
# measured on CPUs only: elsewhere Keras's own compiled predict stays.
INFERENCE_FUNCTION_AFTER = 2048


class Member:
    """One network of an ensemble: the model, its weight, its input size, and whether it returns
    logits (`from_logits=None` reads that from the final layer's activation).

    A model with an auxiliary head (`aux_logits=True`) is judged by its main output only. After
    `inference_after` crops (None: never; "auto": `INFERENCE_FUNCTION_AFTER` where Keras
    computes on the CPU, else never) the member runs the model's `models.inference_function`,
    batch norms folded and weights frozen; it answers as the model does, up to float rounding.
    The model's weights are read then: do not change them after.
    """

    def __init__(
        self,
        model,
        weight=1.0,
        from_logits=None,
        name=None,
        inference_after="auto",
    ):
        if not weight > 0:
            raise ValueError(
                f"An ensemble weight must be positive, got {weight!r} for {model.name}."
            )
        self.model = (
            keras.Model(model.inputs, model.outputs[0]) if len(model.outputs) > 1 else model
        )
        self.weight = float(weight)
        self.from_logits = returns_logits(model) if from_logits is None else from_logits
        self.name = name or model.name
        shape = tuple(model.inputs[0].shape[1:])
        if len(shape) != 3 or None in shape:
            raise ValueError(
                f"{self.name}: multi-crop evaluation needs a fixed input size, but the model's input "
                f"shape is {shape}; build it with input_shape=(height, width, 3)."
            )
        self.input_size = shape[:2]
        self.num_classes = self.model.outputs[0].shape[-1]
        self.class_names = class_names(model)
        if inference_after == "auto":
            on_cpu = all(device.startswith("cpu") for device in keras.distribution.list_devices())
            inference_after = INFERENCE_FUNCTION_AFTER if on_cpu else None
        self.inference_after = inference_after
        self._crops_run = 0
        self._inference = None  # the inference function, once built

    def probabilities(self, crops):
        """Class probabilities [crops, classes] of crops in pixel values [0, 255]."""
        outputs = self._outputs(preprocess_input(crops))
        if self.from_logits:
            outputs = keras.ops.softmax(outputs, axis=-1)
        return keras.ops.convert_to_numpy(outputs)

    def _outputs(self, inputs):
        """The model's outputs: from Keras for the first `inference_after` crops, then from the
        inference function."""
        due = self.inference_after is not None and self._crops_run >= self.inference_after
        if due and self._inference is None:
            self._inference = inference_function(self.model)
        self._crops_run += len(inputs)
        return (self._inference or self.model.predict_on_batch)(inputs)

    def predict(self, images, crops="single", batch_size=32):
        """Class probabilities [images, classes], averaged over the crops of each image."""
        sums = np.zeros((len(images), self.num_classes))
        counts = np.zeros(len(images))
        for chunk, owners in crop_chunks(images, get_scheme(crops), self.input_size, batch_size):
            np.add.at(sums, owners, self.probabilities(chunk))
            np.add.at(counts, owners, 1)
        return sums / counts[:, None]

    def probability_model(self, name):
        """The member as a Keras model returning probabilities."""
        output = self.model.outputs[0]
        if self.from_logits:
            output = keras.layers.Softmax(dtype="float32")(output)
        return keras.Model(self.model.inputs, output, name=name)


def returns_logits(model):
    """Whether `model` ends in logits (linear activation) rather than softmax probabilities."""
    layer = output_layer(model)
    activation = getattr(layer, "activation", None)
    if isinstance(layer, keras.layers.Softmax) or activation is keras.activations.softmax:
        return False
    if activation is keras.activations.linear:
        return True
    raise ValueError(
        f"Cannot tell whether {model.name} returns logits or probabilities: its output layer "
        f"{layer.name!r} ({type(layer).__name__}) ends in neither a linear nor a softmax activation. "
        "Pass from_logits=True or False."
    )


def crop_chunks(images, scheme, input_size, batch_size):
    """Yield (crops, owners): every crop of every image, in batches of at most `batch_size`, with
    the index of the image each crop comes from."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    jobs = [
        (index, box)
        for index, image in enumerate(images)
        for box in scheme.boxes(check_image(image).shape[:2], input_size)
    ]
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        parts = [
            scheme.crop(images[index], [box for _, box in group], input_size)
            for index, group in itertools.groupby(chunk, key=operator.itemgetter(0))
        ]
        yield np.concatenate(parts), np.array([index for index, _ in chunk])


class Ensemble:
    """Several networks whose probabilities are averaged, weighted by `weights` (equal by default).

    `models` are Keras models or `Member`s (which carry their own weight and logits flag); members
    may have different input sizes. `predict` takes images of any size and a crop scheme;
    `to_keras` merges members of one input size into a single Keras model. `names` are the members'
    names, repeats numbered.
    """

    def __init__(self, models, weights=None, from_logits=None):
        if isinstance(models, (keras.Model, Member)):
            models = [models]
        if not models:
            raise ValueError("An ensemble needs at least one model.")
        if weights is not None and len(weights) != len(models):
            raise ValueError(f"Got {len(weights)} weights for {len(models)} models.")
        weights = [None] * len(models) if weights is None else list(weights)
        members = [to_member(model, weight, from_logits) for model, weight in zip(models, weights)]
        classes = {member.num_classes for member in members}
        if len(classes) > 1:
            raise ValueError(
                "Ensemble members must predict the same classes; their output sizes are "
                + ", ".join(f"{member.name}: {member.num_classes}" for member in members)
            )
        named = {tuple(member.class_names) for member in members if member.class_names}
        if len(named) > 1:
            raise ValueError(
                "Ensemble members must predict the same classes; their class names differ: "
                + ", ".join(f"{member.name}: {member.class_names}" for member in members)
            )
        self.members = members
        self.names = unique_names([member.name for member in members])
        self.num_classes = classes.pop()
        # The members' class names (None if none carries any).
        self.class_names = list(named.pop()) if named else None

    @property
    def name(self):
        return " + ".join(self.names)

    def member_probabilities(self, images, crops="single", batch_size=32):
        """Each member's crop-averaged probabilities: [members, images, classes]."""
        return np.stack([member.predict(images, crops, batch_size) for member in self.members])

    def combine(self, member_probabilities):
        """The weighted mean over members of `member_probabilities` [members, images, classes]."""
        weights = np.array([member.weight for member in self.members])
        return np.tensordot(weights / weights.sum(), member_probabilities, axes=1)

    def predict(self, images, crops="single", batch_size=32):
        """Ensemble probabilities [images, classes] of uint8 images [H, W, 3] of any sizes."""
        return self.combine(self.member_probabilities(images, crops, batch_size))

    def to_keras(self, name="ensemble"):
        """One Keras model of the same input as the members, returning the weighted mean of their
        probabilities (as a member of another ensemble it needs from_logits=False)."""
        sizes = {member.input_size for member in self.members}
        if len(sizes) > 1:
            raise ValueError(
                "A single Keras model needs members of one input size; got "
                + ", ".join(f"{member.name}: {member.input_size}" for member in self.members)
                + ". Use Ensemble.predict, which crops for each member's size."
            )
        inputs = keras.Input((*sizes.pop(), 3))
        total = sum(member.weight for member in self.members)
        weighted = [
            keras.layers.Rescaling(member.weight / total, dtype="float32")(
                member.probability_model(f"member_{index}")(inputs)
            )
            for index, member in enumerate(self.members)
        ]
        outputs = keras.layers.Add(dtype="float32")(weighted) if len(weighted) > 1 else weighted[0]
        return keras.Model(inputs, outputs, name=name)


def to_member(model, weight, from_logits):
    """A `Member` from a Keras model, or the `Member` itself (which carries its own weight)."""
    if not isinstance(model, Member):
        return Member(model, 1.0 if weight is None else weight, from_logits)
    if weight is not None:
        raise ValueError(f"{model.name} is a Member: give its weight to Member, not to Ensemble.")
    return model


def unique_names(names):
    """`names`, with repeats numbered ("irv2", "irv2 #2") so that report rows stay apart."""
    seen = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return unique
