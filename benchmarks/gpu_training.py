"""Training images/s, achieved FLOP/s and peak GPU memory of Inception-ResNet-v2 on a GPU: ours in
float32 and mixed precision, beside timm's network trained the same way at its fastest GPU settings.

The one short, prepared run for a lent GPU machine: batch 64 at 299x299, the
`inception_resnet_v2_imagenet` recipe's method (`compile_for_recipe`, then `model.fit`) on one
synthetic batch repeated, so that the input pipeline is not what is measured; the steps after the
first are timed (benchmarks/timing.py). timm's inception_resnet_v2 trains with the same method in
a plain PyTorch loop (benchmarks/timm_training.py), float32 and bf16 autocast, channels_last.
Achieved FLOP/s counts a training step as three forward passes (the backward pass does about twice
the forward pass's multiply-adds) of `keras_inception.models.forward_flops`. "first step" is the
seconds from the start of the first `fit` (or timm step) to the end of its first step: the
tracing and compiling a user waits for.

Ours run on the Keras backend `KERAS_BACKEND` names: on TensorFlow with and without XLA (Keras
compiles with XLA on a GPU by default, `jit_compile="auto"`), on JAX always with it. The models,
the recipe and `compile_for_recipe` need no TensorFlow, so the script also runs on a machine with
JAX alone. It also runs on a CPU, with small settings, to check it before a GPU is lent:

    python benchmarks/gpu_training.py [--batch 64] [--steps 20] [--size 299]
                                      [--policies float32 mixed_bfloat16] [--xla on off] [--no-timm]
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import timing

import keras_inception
from keras_inception.models import forward_flops
from keras_inception.training import load_recipe
from keras_inception.training.method import compile_for_recipe

CLASSES = 1000
RECIPE = "inception_resnet_v2_imagenet"
TIMM_NETWORK = "inception_resnet_v2"
WARMUP_STEPS = 3


def device_name():
    """The device our models train on, as its backend names it."""
    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.platform} {device.device_kind}"
    import tensorflow as tf

    devices = tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("CPU")
    details = tf.config.experimental.get_device_details(devices[0])
    return f"{devices[0].name} {details.get('device_name', '')}"


def gpu_peak_gib():
    """This process's peak memory on the backend's first GPU, or None without one."""
    if keras.backend.backend() == "jax":
        import jax

        peak = (jax.devices()[0].memory_stats() or {}).get("peak_bytes_in_use")
    else:
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        peak = tf.config.experimental.get_memory_info(gpus[0].name)["peak"] if gpus else None
    return None if peak is None else peak / 2**30


def repeated_batch(images, labels):
    """The one batch forever, made once on the backend's device."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.data.Dataset.from_tensors((images, labels)).repeat()
    batch = (keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(labels))

    def forever():
        while True:
            yield batch

    return forever()


def measure_ours(policy, xla, images, labels, args, recipe):
    """{first_step, images_per_s, gpu_gib} of our IR-v2 trained under `policy`."""
    timing.fresh_session(policy)
    model = keras_inception.InceptionResNetV2(
        input_shape=(args.size, args.size, 3),
        classes=CLASSES,
        dropout_rate=recipe.model.dropout_rate,
    )
    compile_for_recipe(model, recipe, steps_per_epoch=args.steps)
    model.jit_compile = xla == "on"
    batches = repeated_batch(images, keras.utils.to_categorical(labels, CLASSES))
    start = time.perf_counter()
    model.fit(batches, steps_per_epoch=1, epochs=1, verbose=0)  # trace and compile
    first_step = time.perf_counter() - start
    model.fit(batches, steps_per_epoch=WARMUP_STEPS, epochs=1, verbose=0)
    speed = timing.fit_images_per_second(
        model, args.batch, batches, steps_per_epoch=args.steps, epochs=1
    )
    return {"first_step": first_step, "images_per_s": speed, "gpu_gib": gpu_peak_gib()}


def measure_timm(bfloat16, images, labels, args, recipe):
    """The same for timm's IR-v2, channels_last, on the GPU."""
    import torch
    from timm_training import timm_runner

    repeats = args.steps + 1
    run = timm_runner(
        TIMM_NETWORK,
        recipe,
        np.concatenate([images] * repeats),
        np.concatenate([labels] * repeats),
        args.batch,
        classes=CLASSES,
        bfloat16=bfloat16,
        channels_last=True,
        device="cuda",
    )
    start = time.perf_counter()
    run()  # the first pass: cuDNN's algorithm search and warm-up
    first_pass = time.perf_counter() - start
    speed = run()
    return {
        "first_step": first_pass - (repeats - 1) * args.batch / speed,  # less its later steps
        "images_per_s": speed,
        "gpu_gib": torch.cuda.max_memory_allocated() / 2**30,
    }


def measure(row, args):
    """Measure one row ("keras_inception POLICY XLA" or "timm float32|bf16") in this process."""
    recipe = load_recipe(RECIPE, ["model.aux_logits=false"])
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (args.batch, args.size, args.size, 3)).astype("float32")
    labels = rng.integers(0, CLASSES, args.batch)
    model, policy, *xla = row.split()
    if model == "timm":
        result = measure_timm(policy == "bf16", images, labels, args, recipe)
    else:
        result = measure_ours(policy, xla[0], images, labels, args, recipe)
    return result | {"rss_gib": timing.peak_rss_gib()}


def rows(args):
    """The rows to measure: timm's where CUDA is at hand, then ours per policy and XLA setting."""
    xla_settings = ["on"] if keras.backend.backend() == "jax" else args.xla
    ours = [f"keras_inception {p} {x}" for p in args.policies for x in xla_settings]
    if args.no_timm:
        return ours
    probe = "import torch, timm; print(torch.cuda.is_available())"
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    if found.stdout.strip() != "True":
        print("timm rows left out: no PyTorch with CUDA and timm here")
        return ours
    return ["timm float32", "timm bf16", *ours]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed steps, plus one")
    parser.add_argument("--size", type=int, default=299)
    parser.add_argument(
        "--policies", nargs="+", default=["float32", "mixed_bfloat16"], help="Keras policy names"
    )
    parser.add_argument("--xla", nargs="+", choices=("on", "off"), default=["on", "off"])
    parser.add_argument("--no-timm", action="store_true", help="leave timm's rows out")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # a child's one row
    args = parser.parse_args()
    if args.row:
        print(json.dumps(measure(args.row, args)))
        return
    model = keras_inception.InceptionResNetV2(
        input_shape=(args.size, args.size, 3), classes=CLASSES
    )
    flops = forward_flops(model)
    print(
        f"{device_name()}; InceptionResNetV2 batch {args.batch} at {args.size}x{args.size}, "
        f"{args.steps} timed steps, {flops / 1e9:.2f} forward GFLOPs per image; "
        f"Keras {keras.__version__} on {keras.backend.backend()}",
        flush=True,
    )
    print(
        f"{'row':34} {'first step s':>12} {'images/s':>9} {'train TFLOP/s':>14} "
        f"{'GPU GiB':>8} {'RSS GiB':>8} {'/ best timm':>11}",
        flush=True,
    )
    best_timm = None
    for row in rows(args):  # timm's first, so that each of ours prints its ratio when it ends
        # Each row in a process of its own: JAX and PyTorch do not share one GPU's memory well.
        result = json.loads(timing.run_again("--row", row))
        speed = result["images_per_s"]
        if row.startswith("timm"):
            best_timm = max(best_timm or 0.0, speed)
        gpu = "-" if result["gpu_gib"] is None else f"{result['gpu_gib']:.1f}"
        ratio = "-" if best_timm is None or row.startswith("timm") else f"{speed / best_timm:.2f}x"
        print(
            f"{row:34} {result['first_step']:12.1f} {speed:9.1f} "
            f"{3 * flops * speed / 1e12:14.2f} {gpu:>8} {result['rss_gib']:8.1f} {ratio:>11}",
            flush=True,
        )


if __name__ == "__main__":
    main()
