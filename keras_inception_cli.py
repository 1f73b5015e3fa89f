"""The `keras-inception` command: a thin layer over the Python API, one subcommand per job.

It lives beside the package, not in it, so that it starts fast: importing `keras_inception`
registers its Keras layers, which imports Keras and TensorFlow (several seconds), while parsing a
command line and printing `--help` need neither. Each handler imports what it uses, after
`main` has loaded TensorFlow with its start-up log lines held back (`--verbose` shows them).

Each subcommand is a pair of functions: `_add_<name>(subparsers)` declares its arguments and sets
`handler`, and the handler runs it and returns the exit status.
"""

import argparse
import contextlib
import functools
import os
import sys
import tempfile


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="keras-inception",
        description="Inception-v4 and Inception-ResNet-v1/v2 for Keras 3: train, evaluate, "
        "predict, export, convert; FaceNet embeddings and face verification.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_subcommand in SUBCOMMANDS:
        add_subcommand(subparsers)
    args = parser.parse_args(argv)
    with _startup_logs_held_back(unless=args.verbose):
        import tensorflow  # noqa: F401  (every handler needs it; its start-up logs print here)
    return args.handler(args)


def _subcommand(subparsers, name, **kwargs):
    """A subcommand's parser, with the options every subcommand shares."""
    parser = subparsers.add_parser(name, **kwargs)
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's start-up and C++ log lines (oneDNN, CUDA, absl)",
    )
    return parser


@contextlib.contextmanager
def _startup_logs_held_back(unless=False):
    """Keep TensorFlow's native start-up lines (written straight to file descriptor 2 while its
    libraries load, before any log level applies) off the console, and its later C++ logs below
    errors; they are replayed if the import fails. Errors still reach Python as exceptions."""
    if unless or "tensorflow" in sys.modules:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# Exit statuses (2 is argparse's, for a command line it cannot parse).
BAD_INPUT_STATUS = 1  # a bad setting, or a file that is missing or unreadable
DEAD_NETWORK_STATUS = 3  # the dead-network detector stopped the run
MISSING_DEPENDENCY_STATUS = 4  # an optional package the command needs is not installed
NON_FINITE_STATUS = 5  # the loss became NaN or infinite
# A re-run of a stopped run exits with the status of the stop, until --restart.


def _reports_errors(handler):
    """Run `handler`, turning the package's errors into one line on stderr and an exit status:
    the only place that maps errors to statuses, used by every subcommand."""

    @functools.wraps(handler)
    def run(args):
        from keras_inception.errors import TrainingStopped

        try:
            return handler(args)
        except TrainingStopped as error:
            status = error.status
            message = error
        except ImportError as error:
            status = MISSING_DEPENDENCY_STATUS
            message = error
        except (ValueError, OSError) as error:
            status = BAD_INPUT_STATUS
            message = error
        print(f"keras-inception {args.command}: {message}", file=sys.stderr)
        return status

    return run


def _add_model_arguments(parser):
    """The models to run, shared by evaluate and predict: --model (repeatable: several make an
    ensemble) with --member-weights, or --network with its published --weights."""
    parser.add_argument(
        "--model",
        action="append",
        metavar="MODEL",
        help="a saved Keras model (.keras) or a run folder; repeat the option to average "
        "several as an ensemble",
    )
    parser.add_argument(
        "--member-weights",
        type=_numbers(float),
        metavar="W1,W2,...",
        help="ensemble weights, one per --model (default: equal)",
    )
    parser.add_argument(
        "--network",
        metavar="NETWORK",
        help="instead of --model: a network (`keras-inception networks` lists them) with "
        "its published --weights",
    )
    parser.add_argument(
        "--weights",
        metavar="NAME",
        help="with --network: the published weights to load, e.g. imagenet",
    )


def _load_ensemble(args):
    """The models the arguments name as an `Ensemble`, each member named after its file."""

    from keras_inception.evaluation import Ensemble, Member

    if (args.network is None) == (args.model is None):
        raise ValueError("give either --model (one or more) or --network with --weights.")
    if args.network is not None:
        return Ensemble(_pretrained_model(args.network, args.weights))
    weights = args.member_weights or [1.0] * len(args.model)
    if len(weights) != len(args.model):
        raise ValueError(f"{len(weights)} --member-weights for {len(args.model)} --model.")
    members = []
    for path, weight in zip(args.model, weights):
        path = _model_file(path)
        members.append(Member(_load_model(path), weight, name=_member_name(path)))
    return Ensemble(members)


def _pretrained_model(network, weights):
    """The network with its published `weights`, built for the input size they expect."""
    from keras_inception.models import get_network

    spec = get_network(network, key="--network")
    if weights not in spec.weights:
        raise ValueError(
            f"--weights: {network} publishes {', '.join(spec.weights) or 'no weights'}; "
            f"got {weights!r}."
        )
    pretrained = spec.weights[weights]
    size = pretrained.input_size
    return spec.factory(weights=weights, input_shape=(size, size, 3), **pretrained.model_config)


def _model_file(path):
    """`path`, or the final model of the run folder `path`."""
    if os.path.isdir(path):
        from keras_inception.run_folder import RunFolder

        run = RunFolder(path)
        if not run.finished:
            raise ValueError(f"{path} holds no finished run, so it has no final model.")
        return str(run.model_file)
    if not os.path.isfile(path):
        raise ValueError(f"no such model file or run folder: {path}")
    return path


def _member_name(path):
    """A member's name: the file's name, or the run folder's for its final model."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.basename(os.path.dirname(os.path.abspath(path))) if stem == "model" else stem


def _load_model(path):
    """A saved `.keras` model, or a ValueError naming the file when it is not one."""
    import keras

    try:
        return keras.saving.load_model(path)
    except Exception as error:  # Keras reports a damaged zip as anything from OSError up
        raise ValueError(
            f"cannot read the model file {path}: not a readable .keras model "
            f"({type(error).__name__})"
        ) from None


def _positive_int(text):
    """An argparse type for an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _numbers(kind):
    """An argparse type for comma-separated numbers of `kind`."""

    def parse(text):
        try:
            return [kind(item) for item in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated numbers, got {text!r}"
            ) from None

    return parse


def _crop_schemes(names):
    """The crop schemes `names` (a list) name, checked before any model loads."""
    from keras_inception.evaluation import get_scheme

    return [get_scheme(name) for name in names]


def _add_evaluate(subparsers):
    parser = _subcommand(
        subparsers,
        "evaluate",
        help="top-1/top-5 error of models and their ensemble under crop schemes",
        description="Evaluate saved models, alone and as an ensemble, under the paper's crop "
        "schemes and print one Markdown table row per (model or ensemble, crop scheme).",
    )
    _add_model_arguments(parser)
    parser.add_argument(
        "--crops",
        type=lambda text: text.split(","),
        default=["single"],
        metavar="SCHEMES",
        help="comma-separated crop schemes among single, 10, 12, 144 (default: single)",
    )
    parser.add_argument(
        "--data",
        required=True,
        metavar="PATH",
        help="a folder with one subfolder per class, or a TFRecord glob with --source tfrecord",
    )
    parser.add_argument("--source", choices=("folder", "tfrecord"), default="folder")
    parser.add_argument(
        "--label-offset",
        type=int,
        default=0,
        metavar="N",
        help="subtracted from stored labels: 1 for slim's TFRecords (1..1000) with 1000-class "
        "models, -1 for class folders with slim's 1001-class models",
    )
    parser.add_argument(
        "--limit", type=_positive_int, metavar="N", help="evaluate the first N images only"
    )
    parser.add_argument("--batch-size", type=_positive_int, default=32, help="crops per model call")
    parser.add_argument("--csv", metavar="FILE", help="also write the results as CSV")
    parser.set_defaults(handler=_evaluate)


@_reports_errors
def _evaluate(args):
    from keras_inception.data import DataConfig, SkipCounter, load_raw
    from keras_inception.evaluation import evaluate, markdown_table, write_csv

    crops = _crop_schemes(args.crops)
    ensemble = _load_ensemble(args)
    # A model that carries class names reads the folders by name, in its label order.
    named = ensemble.class_names is not None and args.source == "folder"
    config = DataConfig(
        source=args.source,
        validation=args.data,
        label_offset=args.label_offset,
        num_classes=ensemble.num_classes,
        classes=tuple(ensemble.class_names) if named else None,
    )
    skipped = SkipCounter()
    dataset, _ = load_raw(config, "validation", skipped=skipped)
    if args.limit is not None:
        dataset = dataset.take(args.limit)
    results = evaluate(ensemble, dataset, crops, batch_size=args.batch_size)
    print(markdown_table(results), end="")
    if skipped.count:
        print(skipped.report(), file=sys.stderr)
    if args.csv:
        write_csv(results, args.csv)
    return 0


def _add_predict(subparsers):
    parser = _subcommand(
        subparsers,
        "predict",
        help="the most likely classes of images",
        description="Print the top classes of each image, named by the class names the model "
        "carries (a fine-tuned run's folders), ImageNet's for 1000- and 1001-class models, and "
        "by index otherwise.",
    )
    _add_model_arguments(parser)
    parser.add_argument(
        "--exported",
        metavar="FOLDER",
        help="instead of --model: a folder `keras-inception export` wrote, run with its own "
        "runtime (single crop, inside the artefact)",
    )
    parser.add_argument(
        "--crops",
        default="single",
        help="crop scheme among single, 10, 12, 144 (default: single)",
    )
    parser.add_argument("--top", type=_positive_int, default=5, help="classes to print per image")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.set_defaults(handler=_predict)


@_reports_errors
def _predict(args):
    from keras_inception.data import read_image
    from keras_inception.imagenet import class_labels

    if args.exported is not None:
        if args.model or args.network or args.crops != "single":
            raise ValueError("--exported runs the artefact alone, with its own single crop.")
        from keras_inception.deployment import load_exported

        exported = load_exported(args.exported)
        probabilities = exported.predict([read_image(path) for path in args.images])
        labels = exported.class_names
    else:
        (crops,) = _crop_schemes([args.crops])
        ensemble = _load_ensemble(args)
        probabilities = ensemble.predict([read_image(path) for path in args.images], crops)
        labels = class_labels(ensemble.num_classes, ensemble.class_names)
    for path, top in zip(args.images, _top_classes(labels, probabilities, args.top)):
        print(path)
        for rank, (label, score) in enumerate(top, 1):
            print(f"  {rank}. {label}  {score:.4f}")
    return 0


def _top_classes(labels, probabilities, top):
    """The `top` (label, probability) pairs of each row of `probabilities`."""
    import numpy as np

    return [
        [(labels[index], row[index]) for index in np.argsort(row)[::-1][:top]]
        for row in probabilities
    ]


def _add_export(subparsers):
    parser = _subcommand(
        subparsers,
        "export",
        help="write a model as a servable SavedModel, LiteRT, ONNX or OpenVINO artefact",
        description="Export a saved model or a run's final model into the folder OUT: a network "
        "that takes raw uint8 images of any size, cuts and scales them as `predict` does and "
        "returns probabilities, with labels.txt and export.json beside it (docs/deployment.md).",
    )
    parser.add_argument("model", metavar="MODEL_OR_RUN", help="a .keras model or a run folder")
    parser.add_argument("output", metavar="OUT", help="the folder to write")
    parser.add_argument(
        "--format",
        default="saved_model",
        choices=("saved_model", "litert", "onnx", "openvino"),
        help="the artefact's format (default: saved_model)",
    )
    parser.add_argument(
        "--float-input",
        action="store_true",
        help="export the network's own input instead (float pixels in [-1, 1] of its size)",
    )
    parser.add_argument(
        "--image-size",
        type=_numbers(int),
        metavar="H,W",
        help="fix the raw images' size, for runtimes that want static shapes (default: any)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    parser.set_defaults(handler=_export)


@_reports_errors
def _export(args):
    from keras_inception.deployment import export

    if args.image_size is not None and len(args.image_size) != 2:
        raise ValueError(f"--image-size takes a height and a width, got {args.image_size}.")
    output = export(
        _load_model(_model_file(args.model)),
        args.output,
        args.format,
        raw_images=not args.float_input,
        image_size=args.image_size,
        overwrite=args.overwrite,
    )
    print(f"Wrote {output} ({args.format}).")
    return 0


def _add_convert(subparsers):
    parser = _subcommand(
        subparsers,
        "convert",
        help="convert TF-slim, timm, facenet-pytorch, keras.applications or Keras-2 FaceNet "
        "weights to .weights.h5",
        description="Convert published weights into a Keras weights file for our models, "
        "strictly: every source tensor used once and every weight set, or an error listing the "
        "missing, unexpected and wrongly shaped names (the output is then left untouched).",
    )
    parser.add_argument(
        "source",
        metavar="SOURCE",
        help="a TF-slim checkpoint (prefix, .ckpt or folder), a timm or facenet-pytorch state "
        "dict (.safetensors, .pth, .pt, .bin), a keras.applications Inception-ResNet-v2 .h5 or a "
        "Keras-2 FaceNet .h5 (keras-facenet's facenet_keras.h5)",
    )
    parser.add_argument(
        "architecture",
        metavar="ARCHITECTURE",
        help="the network the weights are for (`keras-inception networks` lists them)",
    )
    parser.add_argument("output", metavar="OUTPUT.weights.h5")
    parser.add_argument(
        "--format",
        dest="source_format",
        metavar="FORMAT",
        help="slim, pytorch, keras-applications or keras-facenet (default: from the file name, "
        "and for .h5 from its layer names)",
    )
    parser.add_argument(
        "--classes",
        type=int,
        metavar="N",
        help="1001 keeps slim's background class (default: the source's classes, background dropped)",
    )
    parser.add_argument(
        "--aux-logits",
        action="store_true",
        help="keep the source's auxiliary head (load with aux_logits=True)",
    )
    parser.add_argument(
        "--use-ema",
        action="store_true",
        help="read a TF-slim checkpoint's variables from their ExponentialMovingAverage shadows "
        "where they have one (the weights slim's evaluation used)",
    )
    parser.set_defaults(handler=_convert)


@_reports_errors
def _convert(args):
    from keras_inception.weights import convert

    model = convert(
        args.source,
        args.architecture,
        args.output,
        source_format=args.source_format,
        classes=args.classes,
        aux_logits=args.aux_logits,
        use_ema=args.use_ema,
    )
    print(f"Wrote {args.output}: {model.name}, {model.count_params():,} weights.")
    return 0


def _add_train(subparsers):
    parser = _subcommand(
        subparsers,
        "train",
        help="train a network from a recipe (re-run the same command to resume)",
        description="Train the network a recipe describes into its run folder: resolved recipe, "
        "CSV log, TensorBoard logs, checkpoints, final model and curves.png. Running the same "
        "command again on an unfinished folder resumes from its last finished epoch.",
    )
    parser.add_argument(
        "recipe",
        metavar="RECIPE_OR_PATH",
        help="a bundled recipe name (see `keras-inception recipes`) or a .toml file",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. optimizer.learning_rate=0.01 (TOML values; repeatable)",
    )
    parser.add_argument(
        "--output", metavar="DIR", help="the run folder (default: runs/<recipe name>)"
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="start a stopped (or any earlier) run over; what it left moves to attempts/N/",
    )
    parser.set_defaults(handler=_train)


@_reports_errors
def _train(args):
    from keras_inception.training import load_recipe, train

    train(load_recipe(args.recipe, args.overrides), output=args.output, restart=args.restart)
    return 0


def _add_experiment(subparsers):
    parser = _subcommand(
        subparsers,
        "experiment",
        help="reproduce one of the paper's claims at small scale (docs/paper.md)",
        description="Run one of the paper's experiments on the bundled digits: train its runs "
        "(finished ones are read back, an unfinished one resumes) and write its results.csv and "
        "figure.png. Experiments: residual_speedup, residual_scaling, crops_ensembles.",
    )
    parser.add_argument("name", metavar="NAME", help="the experiment to run")
    parser.add_argument(
        "--seeds",
        type=_numbers(int),
        default=[0, 1, 2],
        metavar="S1,S2,...",
        help="the seeds to train each setting with (default: 0,1,2)",
    )
    parser.add_argument(
        "--output", metavar="DIR", help="where to write (default: runs/experiments/NAME)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few steps per run: check the experiment end to end in a minute or two",
    )
    parser.set_defaults(handler=_experiment)


@_reports_errors
def _experiment(args):
    from keras_inception.experiments import run_experiment

    run_experiment(args.name, args.output, args.seeds, args.quick)
    return 0


def _add_plot(subparsers):
    parser = _subcommand(
        subparsers,
        "plot",
        help="training curves of one or more run folders, overlaid",
        description="Plot loss, top-1/top-5 accuracy, learning rate and the dead-network "
        "detector's zero fraction against epochs for each run folder, overlaid with a legend.",
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("-o", "--output", default="curves.png", metavar="FILE.png")
    parser.set_defaults(handler=_plot)


@_reports_errors
def _plot(args):
    from keras_inception.plotting import plot_runs

    plot_runs(args.run_dirs, args.output)
    print(f"Wrote {args.output}.")
    return 0


def _add_recipes(subparsers):
    parser = _subcommand(
        subparsers,
        "recipes",
        help="list the bundled recipes",
        description="List the recipes bundled with the package, one line each.",
    )
    parser.set_defaults(handler=_recipes)


@_reports_errors
def _recipes(args):
    from keras_inception.training import bundled_recipes, load_recipe

    recipes = bundled_recipes()
    width = max(map(len, recipes))
    for name in recipes:
        print(f"{name:<{width}}  {load_recipe(name).description}")
    return 0


def _add_networks(subparsers):
    parser = _subcommand(
        subparsers,
        "networks",
        help="list the networks and their published weights",
        description="List the registered networks, one line each, with the names their "
        "published weights go by (`weights=NAME`) and the input those weights expect.",
    )
    parser.set_defaults(handler=_networks)


@_reports_errors
def _networks(args):
    from keras_inception.models import networks

    for spec in networks():
        weights = ", ".join(
            f"{name} ({pretrained.input_size}x{pretrained.input_size}, {pretrained.preprocessing})"
            for name, pretrained in spec.weights.items()
        )
        print(f"{spec.name:<20} {spec.title}; weights: {weights}")
    return 0


def _add_embedding_model_arguments(parser):
    """The face-embedding model and how faces reach it, shared by embed and verify."""
    parser.add_argument(
        "--model", metavar="MODEL", help="a saved Keras embedding model (.keras) or a run folder"
    )
    parser.add_argument(
        "--network",
        metavar="NETWORK",
        help="instead of --model: a network with its published --weights (inception_resnet_v1)",
    )
    parser.add_argument(
        "--weights",
        metavar="NAME",
        help="with --network: the published weights, e.g. facenet-vggface2",
    )
    parser.add_argument(
        "--preprocessing",
        metavar="NAME",
        help="the pixel scaling: fixed_standardization, prewhiten or inception (default: what "
        "the --weights were trained with; fixed_standardization for a --model)",
    )
    parser.add_argument(
        "--flip",
        action="store_true",
        help="add each face's embedding of its mirror image, then normalise (test-time augmentation)",
    )
    parser.add_argument("--batch-size", type=_positive_int, default=32, help="faces per model call")


def _embedder(args):
    """The `faces.Embedder` the arguments describe."""
    from keras_inception import faces
    from keras_inception.data import pixel_scaling
    from keras_inception.models import get_network

    if (args.network is None) == (args.model is None):
        raise ValueError("give either --model or --network with --weights.")
    preprocessing = args.preprocessing
    if preprocessing is not None:
        pixel_scaling(preprocessing)  # a wrong name is refused before any model loads
    if args.network is not None:
        model = _pretrained_model(args.network, args.weights)
        preprocessing = (
            preprocessing or get_network(args.network).weights[args.weights].preprocessing
        )
    else:
        model = _load_model(_model_file(args.model))
    return faces.Embedder(
        model,
        preprocessing or faces.DEFAULT_PREPROCESSING,
        flip=args.flip,
        batch_size=args.batch_size,
    )


def _add_embed(subparsers):
    parser = _subcommand(
        subparsers,
        "embed",
        help="L2-normalised face embeddings of aligned face crops",
        description="Embed aligned face crops, each resized whole to the model's input, and write "
        "the unit embeddings with their file names: OUT.npy with the paths in OUT.paths.txt (one "
        "per line, in row order), or OUT.csv with the columns path,e0,...,eN (docs/faces.md).",
    )
    _add_embedding_model_arguments(parser)
    parser.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE_OR_FOLDER",
        help="face crops, or folders searched through for them",
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT.npy|OUT.csv")
    parser.set_defaults(handler=_embed)


@_reports_errors
def _embed(args):
    from keras_inception import faces

    npy = faces.embeddings_format(args.output) == ".npy"  # a wrong suffix is refused first
    paths = faces.image_files(args.images)
    embeddings = _embedder(args).embed_files(paths)
    faces.write_embeddings(paths, embeddings, args.output)
    beside = f", their paths to {faces.paths_file(args.output)}" if npy else ""
    print(f"Wrote {len(paths)} embeddings ({embeddings.shape[1]}-d) to {args.output}{beside}.")
    return 0


def _add_verify(subparsers):
    parser = _subcommand(
        subparsers,
        "verify",
        help="face verification over pairs: 10-fold accuracy, VAL@FAR, ROC AUC, threshold",
        description="Embed the images of a pairs file (LFW's pairs.txt, or a CSV of path,path,same) "
        "and measure how well the squared L2 distance of two embeddings tells one person from two, "
        "as facenet measures LFW: accuracy over folds of consecutive pairs at the threshold chosen "
        "on the other folds, VAL at a false accept rate, ROC AUC and the most accurate threshold "
        "(docs/faces.md).",
    )
    _add_embedding_model_arguments(parser)
    parser.add_argument(
        "pairs",
        metavar="PAIRS",
        help="a file in LFW's pairs.txt layout, or a .csv of path,path,same",
    )
    parser.add_argument(
        "--images",
        metavar="ROOT",
        help="the folder of the pairs' images (ROOT/name/name_0001.jpg for pairs.txt; a CSV's "
        "relative paths start there)",
    )
    parser.add_argument(
        "--folds",
        type=_positive_int,
        help="folds of consecutive pairs (default: the file's own, LFW's 10; else 10)",
    )
    parser.add_argument(
        "--far",
        type=float,
        default=1e-3,
        help="the false accept rate VAL is read at (default: 0.001)",
    )
    parser.add_argument("--roc", metavar="FILE.png", help="also draw the ROC curve into FILE.png")
    parser.set_defaults(handler=_verify)


@_reports_errors
def _verify(args):
    from keras_inception import faces

    pairs = faces.read_pairs(args.pairs, args.images)
    result = faces.verify(_embedder(args), pairs, folds=args.folds, far_target=args.far)
    print(faces.verification_table(result), end="")
    if args.roc:
        from keras_inception.plotting import plot_roc

        false_accepts, true_accepts, _ = result.roc()
        plot_roc(false_accepts, true_accepts, args.roc, label=f"AUC {result.auc:.4f}")
        print(f"Wrote {args.roc}.")
    return 0


SUBCOMMANDS = [
    _add_evaluate,
    _add_predict,
    _add_embed,
    _add_verify,
    _add_export,
    _add_convert,
    _add_train,
    _add_experiment,
    _add_plot,
    _add_recipes,
    _add_networks,
]


if __name__ == "__main__":
    sys.exit(main())
