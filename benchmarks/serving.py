"""Serving images/s at 299x299: one Inception network as our Keras model, as each exported artefact
run by its own runtime, and as timm's model at its fastest CPU settings, on the same CPU in one
run, at batch 1 and 8.

Rows:
- our Keras model, `predict_on_batch` on float input, float32 and mixed_bfloat16;
- each export (`keras_inception.export`) through `keras_inception.deployment.load_exported`, fed
  raw uint8 images of 342x342 (the crop, resize and scaling run inside the artefact, which the
  float rows do not pay for); OpenVINO twice: float32, and its own choice on this CPU (bfloat16
  where the CPU has it);
- timm in PyTorch under `torch.inference_mode()`, channels_last model and inputs, float32 and
  bf16 autocast (its fastest supported configuration on CPUs with bf16), and NCHW float32 for
  reference.

Every row is timed in alternating rounds and the best round kept (benchmarks/timing.py); the
ratio is against timm's bf16 channels_last row at the same batch. Weights are random (speed does
not depend on their values).

    python benchmarks/serving.py [--network inception_resnet_v2] [--batches 1 8]
                                 [--steps 4] [--rounds 3] [--formats saved_model litert onnx openvino]
"""

import argparse
import functools
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _torch_first  # noqa: F401  (before TensorFlow)
import keras
import numpy as np
import timing
import timm
import torch

from keras_inception.deployment import FORMATS, export, load_exported
from keras_inception.models import get_network

SIZE = 299
RAW_SIZE = 342  # the central 87.5% of it is the network's 299
REFERENCE = "timm bf16 channels_last"


def images_per_second(call, batch, steps):
    """Images/s of `steps` calls of `call` on a batch, after a warm-up call (which traces)."""
    call()
    start = time.perf_counter()
    for _ in range(steps):
        call()
    return batch * steps / (time.perf_counter() - start)


def keras_models(network, policies):
    """{label: our Keras model} under each dtype policy."""
    models = {}
    for policy in policies:
        timing.fresh_session(policy)
        models[f"keras_inception {policy}"] = get_network(network).factory(weights=None)
    timing.fresh_session("float32")
    return models


def exported_runners(model, folder, formats):
    """{label: a function of a raw uint8 batch} for each exported artefact, run by its own
    runtime; OpenVINO also at its own precision choice."""
    runners = {}
    for format in formats:
        exported = export(model, os.path.join(folder, format), format)
        runners[format] = load_exported(exported).run
        if format == "openvino":
            runners["openvino (its own precision)"] = load_exported(exported, "auto").run
    return runners


def timm_rows(nchw_model, channels_last_model, batch):
    """{label: call} for timm's model: NCHW float32, channels_last float32 and bf16 autocast."""
    nchw = torch.randn(batch, 3, SIZE, SIZE)
    last = nchw.contiguous(memory_format=torch.channels_last)

    def run(network, inputs, bfloat16):
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bfloat16):
            return network(inputs)

    return {
        "timm float32 NCHW": functools.partial(run, nchw_model, nchw, False),
        "timm float32 channels_last": functools.partial(run, channels_last_model, last, False),
        REFERENCE: functools.partial(run, channels_last_model, last, True),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="inception_resnet_v2")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    rng = np.random.default_rng(0)
    print(
        f"{args.network}, {SIZE}x{SIZE}, best of {args.rounds} rounds of {args.steps} calls, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}, keras {keras.__version__}"
    )
    timm_nchw, timm_channels_last = (
        timm.create_model(args.network, pretrained=False).eval() for _ in range(2)
    )
    timm_channels_last.to(memory_format=torch.channels_last)
    ours = keras_models(args.network, ("float32", "mixed_bfloat16"))
    with tempfile.TemporaryDirectory() as folder:
        runners = exported_runners(ours["keras_inception float32"], folder, args.formats)
        for batch in args.batches:
            floats = rng.uniform(-1, 1, (batch, SIZE, SIZE, 3)).astype("float32")
            raw = rng.integers(0, 256, (batch, RAW_SIZE, RAW_SIZE, 3), dtype=np.uint8)
            calls = {
                **{label: functools.partial(run, raw) for label, run in runners.items()},
                **timm_rows(timm_nchw, timm_channels_last, batch),
                **{
                    label: functools.partial(model.predict_on_batch, floats)
                    for label, model in ours.items()
                },
            }
            runs = {
                label: functools.partial(images_per_second, call, batch, args.steps)
                for label, call in calls.items()
            }
            best = timing.best_of_rounds(runs, args.rounds)
            print(f"\nbatch {batch}\n{'row':36} {'images/s':>9} {'vs ' + REFERENCE:>28}")
            for label, speed in sorted(best.items(), key=lambda item: -item[1]):
                print(f"{label:36} {speed:9.2f} {speed / best[REFERENCE]:27.2f}x", flush=True)


if __name__ == "__main__":
    main()
