"""Serving images/s at 299x299: one Inception network as our Keras model, as each exported artefact
run by its own runtime, and as timm's model at its fastest CPU settings, on the same CPU in one
run, at batch 1 and 8.

Rows:
- our Keras model on float input, float32 and mixed_bfloat16: Keras's `predict_on_batch`, and
  the inference function that `predict` and `evaluate` switch to after their first crops
  (`keras_inception.models.inference_function`: batch norms folded, weights frozen);
- each export (`keras-inception export`) through `keras_inception.deployment.load_exported`, fed
  raw uint8 images of 342x342 (the crop, resize and scaling run inside the artefact, which the
  float rows do not pay for); OpenVINO twice: float32, and its own choice on this CPU (bfloat16
  where the CPU has it);
- timm in PyTorch under `torch.inference_mode()`, channels_last model and inputs, float32 and
  bf16 autocast (its fastest supported configuration on CPUs with bf16), and NCHW float32 for
  reference.

Each runtime lives in a process of its own, so that no runtime's thread pool (TensorFlow's,
PyTorch's OpenMP, OpenVINO's TBB) competes with another's: in one process, OpenVINO ran at a third
of its speed. The two Keras rows of a precision share a process and its model (a process for each
of the 12 rows ran out of 23 GB). The rows are timed one at a time in alternating rounds and the
best round of each is kept (benchmarks/timing.py); the ratio is against the fastest timm row at
the same batch (bf16 where the CPU computes it natively, float32 channels_last where it emulates
bf16). Our weights are random, with batch-norm statistics and offsets as a trained network's
(`save_trained_like`); timm's are its initial ones.

    python benchmarks/serving.py [--network inception_resnet_v2] [--batches 1 8]
                                 [--steps 3] [--rounds 3] [--formats saved_model litert onnx openvino]

`--formats` with no format leaves the exports out (quick: no conversion).
"""

import argparse
import functools
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

SIZE = 299
RAW_SIZE = 342  # the central 87.5% of it is the network's 299
SAVED = "model.keras"  # the weights every row of ours and every export holds
FORMATS = ("saved_model", "litert", "onnx", "openvino")
# Between rows: the previous row's threads spin a while after their last call (OpenMP, TBB).
PAUSE_SECONDS = 2.0


def save_trained_like(network, path):
    """Save `network` with random batch-norm statistics and offsets, as a trained network has
    them: built afresh, its folded biases are zeros, and TensorFlow's optimiser removes an add of
    zeros, which spares the inference function work (and fusion) that trained weights need."""
    from keras_inception.models import get_network

    model = get_network(network).factory(weights=None)
    rng = np.random.default_rng(0)
    for weight in model.weights:
        if len(weight.shape) == 1:
            low, high = (0.5, 1.5) if "variance" in weight.path else (-0.1, 0.1)
            weight.assign(rng.uniform(low, high, weight.shape))
    model.save(path)


@functools.cache
def keras_model(network, saved, policy):
    """Our `network` under `policy` with the weights `saved` holds, once per process (both Keras
    rows of a policy use it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from keras_inception.models import get_network

    keras.mixed_precision.set_global_policy(policy)
    model = get_network(network).factory(weights=None)
    model.load_weights(saved)
    return model


@functools.cache
def keras_inference_function(network, saved, policy):
    from keras_inception.models import inference_function

    return inference_function(keras_model(network, saved, policy))


def keras_call(network, saved, policy, inference_function, batch):
    floats = np.random.default_rng(0).uniform(-1, 1, (batch, SIZE, SIZE, 3)).astype("float32")
    if inference_function:
        run = keras_inference_function(network, saved, policy)
    else:
        run = keras_model(network, saved, policy).predict_on_batch
    return functools.partial(run, floats)


def exported_call(folder, precision, batch):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_inception.deployment import load_exported

    run = load_exported(folder, precision).run
    raw = np.random.default_rng(0).integers(0, 256, (batch, RAW_SIZE, RAW_SIZE, 3), "uint8")
    return functools.partial(run, raw)


def timm_call(network, channels_last, bfloat16, batch):
    import timm
    import torch

    torch.set_num_threads(os.cpu_count())
    model = timm.create_model(network, pretrained=False).eval()
    inputs = torch.randn(batch, 3, SIZE, SIZE)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        inputs = inputs.contiguous(memory_format=torch.channels_last)

    def run():
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bfloat16):
            return model(inputs)

    return run


def processes(network, folder, formats):
    """The rows, grouped by the process they run in: [{label: a function of the batch size that
    builds the row's call}, ...]. Each runtime has a process of its own; the two Keras rows of a
    precision share one (and its model), run one at a time."""
    groups = []
    for format in formats:
        groups.append(
            {format: functools.partial(exported_call, os.path.join(folder, format), "float32")}
        )
        if format == "openvino":
            own = functools.partial(exported_call, os.path.join(folder, format), "auto")
            groups.append({"openvino (its own precision)": own})
    for label, channels_last, bfloat16 in (
        ("timm float32 NCHW", False, False),
        ("timm float32 channels_last", True, False),
        ("timm bf16 channels_last", True, True),
    ):
        groups.append({label: functools.partial(timm_call, network, channels_last, bfloat16)})
    for policy in ("float32", "mixed_bfloat16"):
        groups.append(
            {
                f"keras_inception {policy}{suffix}": functools.partial(
                    keras_call, network, os.path.join(folder, SAVED), policy, inference_function
                )
                for inference_function, suffix in ((False, ""), (True, " inference fn"))
            }
        )
    return groups


def serve_rows(builds, connection, steps):
    """A process's rows: for each (label, batch size) received, images/s of `steps` calls of that
    row after a pause and a warm-up call (which builds and traces); None ends it."""
    calls = {}
    while (request := connection.recv()) is not None:
        label, batch = request
        if request not in calls:
            calls[request] = builds[label](batch)
        call = calls[request]
        time.sleep(PAUSE_SECONDS)
        call()
        start = time.perf_counter()
        for _ in range(steps):
            call()
        connection.send(batch * steps / (time.perf_counter() - start))


def time_in_row(connection, label, batch):
    """Ask a row's process for one timing of `label` at `batch`, and wait for it."""
    connection.send((label, batch))
    return connection.recv()


def export_all(network, folder, formats, context):
    """Save a trained-like `network` and export it in each format, each in a process of its own
    (tf2onnx's peak reached 16.7 GB for Inception-ResNet-v2)."""
    saved = os.path.join(folder, SAVED)
    saving = context.Process(target=save_trained_like, args=(network, saved))
    saving.start()
    saving.join()
    if saving.exitcode:
        sys.exit(f"saving {network} failed")
    for format in formats:
        command = ["keras-inception", "export", saved, os.path.join(folder, format)]
        subprocess.run([*command, "--format", format], check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="inception_resnet_v2")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--formats", nargs="*", default=list(FORMATS), choices=FORMATS)
    args = parser.parse_args()
    import timing  # imports Keras: here, not where the rows' processes would import it too

    print(
        f"{args.network}, {SIZE}x{SIZE}, best of {args.rounds} rounds of {args.steps} calls, "
        f"{os.cpu_count()} CPUs, each runtime in its own process"
    )
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        export_all(args.network, folder, args.formats, context)
        connections = {}
        for builds in processes(args.network, folder, args.formats):
            ours, theirs = context.Pipe()
            context.Process(
                target=serve_rows, args=(builds, theirs, args.steps), daemon=True
            ).start()
            connections.update(dict.fromkeys(builds, ours))
        for batch in args.batches:
            runs = {
                label: functools.partial(time_in_row, connection, label, batch)
                for label, connection in connections.items()
            }
            best = timing.best_of_rounds(runs, args.rounds)
            fastest_timm = max((label for label in best if label.startswith("timm")), key=best.get)
            print(f"\nbatch {batch}, ratio to the fastest timm row ({fastest_timm})")
            print(f"{'row':44} {'images/s':>9} {'ratio':>7}")
            for label, speed in sorted(best.items(), key=lambda item: -item[1]):
                print(f"{label:44} {speed:9.2f} {speed / best[fastest_timm]:6.2f}x", flush=True)
        for connection in set(connections.values()):
            connection.send(None)


if __name__ == "__main__":
    main()
