"""Top-1 and top-5 error over a whole dataset, one row per (model or ensemble, crop scheme), and the
report as a Markdown table (the paper's layout) or CSV.

The dataset is streamed in blocks of images: what is held at any time is one block, one chunk of
crops and the running counts, whatever the dataset's size.
"""

import csv
import dataclasses
import itertools

import keras
import numpy as np

from keras_inception.evaluation.crops import get_scheme
from keras_inception.evaluation.ensemble import Ensemble

TOP_K = (1, 5)


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """One row of the report: errors are fractions of `images`."""

    model: str
    crops: str
    images: int
    top1_error: float
    top5_error: float


def evaluate(models, data, crops=("single",), weights=None, batch_size=32, images_per_step=32):
    """Top-1/top-5 errors of each model, and of their ensemble when there are several, under each
    crop scheme.

    models: a Keras model, a list of them, or an `Ensemble`.
    data: an iterable (e.g. a tf.data.Dataset) of (uint8 image [H, W, 3], integer label) pairs,
        images of any size; labels index the models' outputs.
    crops: scheme names ("single", "10", "12", "144") or `CropScheme`s.
    weights: ensemble weights, one per model (an `Ensemble` has its own).
    batch_size: most crops given to a model at once.
    images_per_step: images read and averaged together.

    Returns a list of `EvaluationResult`, grouped by model then scheme.
    """
    if isinstance(models, Ensemble) and weights is not None:
        raise ValueError("An Ensemble carries its own weights: pass weights to Ensemble instead.")
    ensemble = models if isinstance(models, Ensemble) else Ensemble(models, weights)
    schemes = [get_scheme(scheme) for scheme in crops]
    rows = list(ensemble.names)
    if len(rows) > 1:
        rows.append(ensemble.name)
    counters = {(row, scheme.name): TopKCounter() for row in rows for scheme in schemes}
    for images, labels in blocks(data, images_per_step):
        check_labels(labels, ensemble.num_classes)
        for scheme in schemes:
            member_probabilities = ensemble.member_probabilities(images, scheme, batch_size)
            if len(rows) > 1:
                member_probabilities = [
                    *member_probabilities,
                    ensemble.combine(member_probabilities),
                ]
            for row, probabilities in zip(rows, member_probabilities):
                counters[row, scheme.name].update(labels, probabilities)
    return [counter.result(*key) for key, counter in counters.items()]


class TopKCounter:
    """Running top-k accuracies (Keras metrics) and the number of images seen."""

    def __init__(self):
        self.accuracies = [keras.metrics.SparseTopKCategoricalAccuracy(k=k) for k in TOP_K]
        self.images = 0

    def update(self, labels, probabilities):
        probabilities = probabilities.astype("float32")
        for accuracy in self.accuracies:
            accuracy.update_state(labels, probabilities)
        self.images += len(labels)

    def result(self, model, crops):
        if not self.images:
            raise ValueError("The dataset is empty: there is nothing to evaluate.")
        top1, top5 = (1.0 - float(accuracy.result()) for accuracy in self.accuracies)
        return EvaluationResult(model, crops, self.images, top1, top5)


def blocks(data, size):
    """Yield (images, labels) blocks of at most `size` pairs of `data`, as NumPy arrays."""
    pairs = iter(data.as_numpy_iterator() if hasattr(data, "as_numpy_iterator") else data)
    while block := list(itertools.islice(pairs, size)):
        yield [np.asarray(image) for image, _ in block], np.array([label for _, label in block])


def check_labels(labels, num_classes):
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"Labels must be integer class indices; got {labels.dtype} {labels.shape}."
        )
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise ValueError(
            f"Label {bad[0]} is outside the models' {num_classes} classes (0..{num_classes - 1}). "
            "Check the label offset: slim's 1001-class models keep class 0 for background."
        )


def markdown_table(results):
    """The results as a Markdown table: network, crops, top-1 and top-5 error in percent."""
    lines = [
        "| Network | Crops | Images | Top-1 error (%) | Top-5 error (%) |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r.model} | {r.crops} | {r.images} | {100 * r.top1_error:.2f} | {100 * r.top5_error:.2f} |"
        for r in results
    ]
    return "\n".join(lines) + "\n"


def write_csv(results, path):
    """Write the results to `path` as CSV, one column per `EvaluationResult` field."""
    fields = [field.name for field in dataclasses.fields(EvaluationResult)]
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=fields)
        writer.writeheader()
        writer.writerows(dataclasses.asdict(result) for result in results)
