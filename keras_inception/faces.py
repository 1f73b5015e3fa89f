"""Faces: FaceNet embeddings of aligned face crops, and face verification over pairs of images,
measured as Sandberg's facenet measures LFW (docs/faces.md).

Detection and alignment are not here: the images are crops a detector (MTCNN, say) has already
cut around each face, so each is resized to the model's input whole, without a central crop.
Two faces are compared by the squared L2 distance of their unit embeddings (0 for the same
direction, 4 for opposite ones), as facenet does, and judged the same person below a threshold.
"""

import csv
import dataclasses
import itertools
import os
from pathlib import Path

import numpy as np
import tensorflow as tf
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import KFold

from keras_inception.data.decoding import read_image
from keras_inception.data.preprocessing import pixel_scaling
from keras_inception.data.sources import IMAGE_EXTENSIONS
from keras_inception.run_folder import atomic_path

# What a model file's faces are scaled by unless told otherwise: the 2018 FaceNet weights' input.
DEFAULT_PREPROCESSING = "fixed_standardization"
# facenet's threshold grids (lfw.evaluate): accuracy in steps of 0.01, VAL@FAR in steps of 0.001.
ACCURACY_THRESHOLDS = np.arange(0, 4, 0.01)
VAL_THRESHOLDS = np.arange(0, 4, 0.001)
DEFAULT_FOLDS = 10


class Embedder:
    """A face-embedding model with the pixel scaling its weights expect.

    `embed` resizes each uint8 RGB crop to the model's input (bilinear, the whole image), scales
    it by `preprocessing` ("fixed_standardization", "prewhiten" or "inception") and returns unit
    embeddings. With `flip`, each embedding is the normalised sum of the image's and its mirror
    image's (test-time augmentation). Images reach the model `batch_size` at a time.
    """

    def __init__(self, model, preprocessing=DEFAULT_PREPROCESSING, flip=False, batch_size=32):
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.model = model
        self.scale = pixel_scaling(preprocessing)
        self.preprocessing = preprocessing
        self.flip = flip
        self.batch_size = batch_size
        self.input_size = tuple(model.inputs[0].shape[1:3])
        if None in self.input_size:
            raise ValueError(
                f"{model.name} takes images of any size, so there is no size to resize faces to: "
                "build it with input_shape=(160, 160, 3), FaceNet's."
            )
        self.embedding_size = model.outputs[0].shape[-1]

    def embed(self, images):
        """Unit embeddings [N, D] (float32) of an iterable of uint8 images [H, W, 3] of any size,
        taken `batch_size` at a time (a generator is never held whole)."""
        images = iter(images)
        parts = [np.zeros((0, self.embedding_size), "float32")]
        while batch := list(itertools.islice(images, self.batch_size)):
            resized = [tf.image.resize(image, self.input_size).numpy() for image in batch]
            pixels = self.scale(np.stack(resized))
            embeddings = self.model.predict_on_batch(pixels)
            if self.flip:  # the scalings are per image, so mirroring after them is the same
                embeddings = embeddings + self.model.predict_on_batch(np.flip(pixels, axis=2))
            parts.append(l2_normalise(np.asarray(embeddings, "float32")))
        return np.concatenate(parts)

    def embed_files(self, paths):
        """Unit embeddings of the image files `paths`, in order; a ValueError names a file that
        is not a readable image."""
        return self.embed(read_image(path) for path in paths)


def l2_normalise(vectors):
    """Each row of `vectors` scaled to unit length (an all-zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def squared_distances(first, second):
    """The squared L2 distance between each row of `first` and the same row of `second`."""
    return np.sum(np.square(np.asarray(first) - np.asarray(second)), axis=-1)


def image_files(paths):
    """The images `paths` name: files as given, and the image files anywhere under folders
    (hidden ones left out), sorted. A ValueError names a path that is neither, or a folder with
    no images."""
    files = []
    for path in paths:
        if os.path.isfile(path):
            files.append(path)
        elif os.path.isdir(path):
            found = sorted(_images_under(path))
            if not found:
                raise ValueError(f"{path} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
            files += found
        else:
            raise ValueError(f"no such image file or folder: {path}")
    return files


def _images_under(folder):
    for directory, subfolders, names in os.walk(folder):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in names:
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                yield os.path.join(directory, name)


def paths_file(output):
    """Where the image paths of the embeddings in the `.npy` file `output` are written:
    `faces.npy` -> `faces.paths.txt`, one path per line in row order."""
    return Path(output).with_suffix(".paths.txt")


def embeddings_format(output):
    """The format of the embeddings file `output`, ".npy" or ".csv"; a ValueError otherwise."""
    suffix = Path(output).suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise ValueError(f"embeddings are written to a .npy or a .csv file, got {output}.")
    return suffix


def write_embeddings(paths, embeddings, output):
    """Write `embeddings` [N, D] of the images `paths` to `output`, each file atomically:
    `.npy`, the float32 array, with the paths beside it (`paths_file`); `.csv`, a header
    `path,e0,...` and one row per image."""
    if embeddings_format(output) == ".npy":
        with atomic_path(paths_file(output)) as partial:
            partial.write_text("".join(f"{path}\n" for path in paths), encoding="utf-8")
        with atomic_path(output) as partial, open(partial, "wb") as file:
            np.save(file, np.asarray(embeddings, "float32"))
    else:
        with atomic_path(output) as partial, open(partial, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["path", *(f"e{index}" for index in range(embeddings.shape[1]))])
            for path, row in zip(paths, embeddings):
                writer.writerow([path, *(f"{value:.9g}" for value in row)])  # float32 exactly


def read_embeddings(path):
    """The (paths, float32 embeddings [N, D]) that `write_embeddings` wrote to `path`."""
    if embeddings_format(path) == ".csv":
        with open(path, newline="") as file:
            rows = list(csv.reader(file))[1:]
        return [row[0] for row in rows], np.array([row[1:] for row in rows], "float32")
    return paths_file(path).read_text(encoding="utf-8").splitlines(), np.load(path)


@dataclasses.dataclass(frozen=True)
class Pairs:
    """Pairs of face images: `first[i]` and `second[i]` show the same person where `same[i]`.
    `folds` is how many folds the file defines (LFW's pairs.txt: 10), else None."""

    first: list
    second: list
    same: np.ndarray
    folds: int | None = None

    def __len__(self):
        return len(self.same)


def read_pairs(path, images=None):
    """The pairs of the file `path`: a `.csv` of `path,path,same` rows (an optional header; same
    as 1/0, true/false or yes/no; paths relative to `images` where given), or any other file in
    LFW's pairs.txt layout, whose images lie in `images` (`ROOT/name/name_0001.jpg` or `.png`).
    A ValueError names a missing or malformed file, or the images that are missing."""
    if not os.path.isfile(path):
        raise ValueError(f"no such pairs file: {path}")
    with open(path, newline="", encoding="utf-8") as file:
        if Path(path).suffix.lower() == ".csv":
            pairs = _csv_pairs(list(csv.reader(file)), images or "", path)
        elif images is None:
            raise ValueError(f"{path} names images in LFW's layout: give the folder they lie in.")
        else:
            pairs = _lfw_pairs(file.read().splitlines(), images, path)
    missing = [
        name for name in dict.fromkeys(pairs.first + pairs.second) if not os.path.isfile(name)
    ]
    if missing:
        raise ValueError(f"{path} names {len(missing)} missing images, the first {missing[0]}.")
    return pairs


_SAME = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def _csv_pairs(rows, root, path):
    rows = [(number, row) for number, row in enumerate(rows, 1) if "".join(row).strip()]
    if rows and len(rows[0][1]) == 3 and _same_flag(rows[0][1][2]) is None:
        rows = rows[1:]  # a header
    first, second, same = [], [], []
    for number, row in rows:
        if len(row) != 3 or _same_flag(row[2]) is None:
            raise ValueError(f"{path}, line {number}: expected path,path,same (1 or 0), got {row}.")
        first.append(os.path.join(root, row[0].strip()))
        second.append(os.path.join(root, row[1].strip()))
        same.append(_same_flag(row[2]))
    return Pairs(first, second, np.array(same, bool))


def _same_flag(cell):
    """A CSV cell's same flag (1/0, true/false, yes/no in any case), or None for anything else."""
    return _SAME.get(cell.strip().lower())


def _lfw_pairs(lines, root, path):
    """LFW's pairs.txt: a header "folds pairs" ("10 300": each fold 300 same-person pairs, then
    300 different-person ones) or just "pairs" (pairsDevTrain.txt), then one pair a line:
    `name n1 n2` (the same person) or `name1 n1 name2 n2`."""
    header = lines[0].split() if lines else []
    if len(header) not in (1, 2) or not all(field.isdigit() for field in header):
        raise ValueError(f"{path}, line 1: expected LFW's header 'folds pairs', got {header}.")
    folds, per_fold = (
        (int(header[0]), int(header[1])) if len(header) == 2 else (None, int(header[0]))
    )
    first, second, same = [], [], []
    for number, line in enumerate(lines[1:], 2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in (3, 4) or not fields[1].isdigit() or not fields[-1].isdigit():
            raise ValueError(
                f"{path}, line {number}: expected 'name n1 n2' or 'name1 n1 name2 n2', got {line!r}."
            )
        name, other = fields[0], fields[2] if len(fields) == 4 else fields[0]
        first.append(_lfw_image(root, name, fields[1]))
        second.append(_lfw_image(root, other, fields[-1]))
        same.append(len(fields) == 3)
    expected = 2 * per_fold * (folds or 1)
    if len(same) != expected:
        raise ValueError(f"{path} announces {expected} pairs in its header but holds {len(same)}.")
    return Pairs(first, second, np.array(same, bool), folds)


def _lfw_image(root, name, number):
    """LFW's `ROOT/name/name_0001.jpg`, or the `.png` facenet's aligner writes where only that
    exists."""
    stem = os.path.join(root, name, f"{name}_{int(number):04d}")
    return next(
        (stem + ext for ext in (".jpg", ".png") if os.path.isfile(stem + ext)), stem + ".jpg"
    )


@dataclasses.dataclass(frozen=True)
class Verification:
    """How well distances tell same-person pairs from different ones, as facenet's
    `lfw.evaluate` measures it, over `folds` consecutive folds (KFold without shuffling).

    Attributes:
        distances, same: each pair's distance, and whether it shows one person.
        fold_accuracies, fold_thresholds: each fold's accuracy at the threshold that was most
            accurate on the other folds.
        fold_vals, fold_fars: each fold's validation rate (same pairs accepted) and false accept
            rate at the threshold at which the other folds accept `far_target` of the
            different pairs.
        threshold: the most accurate threshold over all pairs, the one to use on new faces.
        auc: the area under the ROC curve of -distance (scikit-learn's).
    """

    distances: np.ndarray
    same: np.ndarray
    fold_accuracies: np.ndarray
    fold_thresholds: np.ndarray
    fold_vals: np.ndarray
    fold_fars: np.ndarray
    far_target: float
    threshold: float
    auc: float

    @property
    def folds(self):
        return len(self.fold_accuracies)

    @property
    def accuracy(self):
        return float(np.mean(self.fold_accuracies))

    @property
    def val(self):
        return float(np.mean(self.fold_vals))

    @property
    def far(self):
        return float(np.mean(self.fold_fars))

    def roc(self):
        """scikit-learn's ROC curve of the pairs: (false accept rates, true accept rates,
        distance thresholds), a pair accepted at or below each threshold."""
        fpr, tpr, scores = roc_curve(self.same, -self.distances)
        return fpr, tpr, -scores


def verification(distances, same, folds=DEFAULT_FOLDS, far_target=1e-3):
    """A `Verification` of pairs whose `distances` (squared L2 of unit embeddings, in [0, 4]) and
    `same` flags are given in the order that defines the folds.

    As facenet's `calculate_roc` and `calculate_val`: a pair is accepted below a threshold; each
    fold is judged at thresholds chosen on the others, the most accurate one on the 0.01 grid and
    the one that accepts `far_target` of their different pairs, interpolated on the 0.001 grid.
    """
    distances = np.asarray(distances, "float64")
    same = np.asarray(same, bool)
    if distances.shape != same.shape or distances.ndim != 1:
        raise ValueError(f"got {distances.shape} distances for {same.shape} same flags.")
    if not 0 < far_target < 1:
        raise ValueError(f"the FAR target must lie between 0 and 1, got {far_target!r}.")
    if not 2 <= folds <= len(same):
        raise ValueError(
            f"{len(same)} pairs cannot make {folds} folds (at least 2, one pair each)."
        )
    splits = list(KFold(n_splits=folds, shuffle=False).split(distances))
    for index, (_, test) in enumerate(splits, 1):
        if same[test].all() or not same[test].any():
            raise ValueError(
                f"fold {index} of {folds} (pairs {test[0] + 1} to {test[-1] + 1}) holds only "
                f"{'same' if same[test].all() else 'different'}-person pairs: the folds are runs "
                "of consecutive pairs, so interleave the two kinds (as LFW's pairs.txt does)."
            )
    results = np.array(
        [
            _fold(distances[train], same[train], distances[test], same[test], far_target)
            for train, test in splits
        ]
    )
    return Verification(
        distances,
        same,
        *results.T,
        far_target=far_target,
        threshold=float(ACCURACY_THRESHOLDS[np.argmax(_accuracies(distances, same))]),
        auc=float(roc_auc_score(same, -distances)),
    )


def _fold(train_distances, train_same, test_distances, test_same, far_target):
    """One fold's (accuracy, threshold, VAL, FAR) with the thresholds chosen on its training pairs."""
    threshold = ACCURACY_THRESHOLDS[np.argmax(_accuracies(train_distances, train_same))]
    (accuracy,) = _accuracies(test_distances, test_same, [threshold])
    _, far_train = _accept_rates(train_distances, train_same, VAL_THRESHOLDS)
    far_threshold = _threshold_at_far(VAL_THRESHOLDS, far_train, far_target)
    val, far = (rates[0] for rates in _accept_rates(test_distances, test_same, [far_threshold]))
    return accuracy, threshold, val, far


def _accepted(distances, same, thresholds):
    """(same, different) pairs accepted (distance below it) at each threshold, counted by
    sorting, so a long list of pairs never makes a pairs-by-thresholds table."""
    thresholds = np.asarray(thresholds)
    return tuple(
        np.searchsorted(np.sort(distances[kind]), thresholds, side="left") for kind in (same, ~same)
    )


def _accuracies(distances, same, thresholds=ACCURACY_THRESHOLDS):
    """The fraction of pairs judged right at each threshold (from whole counts, so equal
    accuracies are equal numbers and the first best threshold is facenet's)."""
    true_accepts, false_accepts = _accepted(distances, same, thresholds)
    return (true_accepts + np.sum(~same) - false_accepts) / len(same)


def _accept_rates(distances, same, thresholds):
    """(VAL, FAR) at each threshold: the fractions of same and of different pairs accepted."""
    true_accepts, false_accepts = _accepted(distances, same, thresholds)
    return true_accepts / np.sum(same), false_accepts / np.sum(~same)


def _threshold_at_far(thresholds, far, target):
    """The threshold at which the false accept rate `far` (non-decreasing along `thresholds`)
    reaches `target`, interpolated linearly between the last threshold at or below the target
    and the next.

    That is facenet's `interp1d(far, thresholds, kind="slinear")(target)` wherever it is defined:
    SciPy refuses repeated `far` values ("Expect x to not have duplicates"), which every plateau
    of the curve makes, and between plateaus the last threshold of the lower one is the largest
    that keeps the rate. A target above every rate gives the last threshold.
    """
    below = int(np.searchsorted(far, target, side="right")) - 1  # far[0] = 0 at threshold 0
    if below >= len(far) - 1:
        return float(thresholds[-1])
    step = (target - far[below]) / (far[below + 1] - far[below])
    return float(thresholds[below] + step * (thresholds[below + 1] - thresholds[below]))


def verify(embedder, pairs, folds=None, far_target=1e-3):
    """The `Verification` of `pairs` (a `Pairs`) by `embedder`'s embeddings, each image embedded
    once; `folds` defaults to the file's own (LFW's 10), else 10."""
    paths = list(dict.fromkeys(pairs.first + pairs.second))
    embeddings = dict(zip(paths, embedder.embed_files(paths)))
    distances = squared_distances(
        [embeddings[path] for path in pairs.first], [embeddings[path] for path in pairs.second]
    )
    return verification(distances, pairs.same, folds or pairs.folds or DEFAULT_FOLDS, far_target)


def verification_table(result):
    """`result` as a one-row Markdown table: pairs, mean accuracy over the folds (± standard
    deviation), VAL at the FAR target with the FAR reached, ROC AUC and the best threshold."""
    return (
        f"| Pairs | Accuracy ({result.folds}-fold) | VAL @ FAR={result.far_target:g} | FAR "
        "| ROC AUC | Threshold |\n"
        "|---:|---:|---:|---:|---:|---:|\n"
        f"| {len(result.same)} "
        f"| {result.accuracy:.4f} ± {np.std(result.fold_accuracies):.4f} "
        f"| {result.val:.4f} ± {np.std(result.fold_vals):.4f} "
        f"| {result.far:.4f} | {result.auc:.4f} | {result.threshold:.2f} |\n"
    )
