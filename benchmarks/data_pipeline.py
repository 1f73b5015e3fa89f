"""Training input pipeline speed: images/s at 299x299 from a folder of JPEGs.

Compares `keras_inception.data.make_datasets` (decode, Inception crop, flip, colour distortion,
[-1, 1]) with the reference `keras.utils.image_dataset_from_directory` and its plain resize,
on the same generated folder, in the same run. Run: `python benchmarks/data_pipeline.py`.
"""

import argparse
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_inception.data import DataConfig, make_datasets

REFERENCE = "keras.utils.image_dataset_from_directory + resize"


def write_jpegs(root, count, classes, seed=0):
    """Photo-like JPEGs (smooth colour fields plus noise) of ImageNet-like sizes."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        height, width = rng.integers(300, 500), rng.integers(300, 500)
        coarse = rng.uniform(0, 255, (8, 8, 3)).astype(np.float32)
        smooth = tf.image.resize(coarse, (height, width)).numpy()
        pixels = np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)
        path = Path(root) / f"class_{i % classes:02d}" / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tf.io.encode_jpeg(pixels, quality=90).numpy())


def best_rates(pipelines, rounds):
    """Best images/s of each pipeline over `rounds` full passes, after one warm-up pass each.

    The pipelines take turns within each round, so a busy machine slows them alike.
    """
    best = dict.fromkeys(pipelines, 0.0)
    for round_ in range(rounds + 1):
        for name, dataset in pipelines.items():
            start, images = time.perf_counter(), 0
            for batch, _ in dataset:
                images += int(batch.shape[0])
            if round_:
                best[name] = max(best[name], images / (time.perf_counter() - start))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=299)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = (args.image_size, args.image_size)

    with tempfile.TemporaryDirectory() as root:
        write_jpegs(root, args.images, args.classes)
        ours = {
            f"keras_inception make_datasets, colour {mode}": make_datasets(
                DataConfig(source="folder", train=root, colour_distortion=mode),
                image_size=size,
                batch_size=args.batch_size,
            ).train
            for mode in ("fast", "none")
        }
        reference = keras.utils.image_dataset_from_directory(
            root, image_size=size, batch_size=args.batch_size, shuffle=True, seed=0, verbose=False
        )
        reference = reference.map(
            lambda images, labels: (images / 127.5 - 1.0, labels),
            num_parallel_calls=tf.data.AUTOTUNE,
        ).prefetch(tf.data.AUTOTUNE)
        rates = best_rates({**ours, REFERENCE: reference}, args.rounds)

    print(f"{args.images} JPEGs of 300-500 px -> {size[0]}x{size[1]}, batch {args.batch_size}")
    print(f"{'pipeline':<52}{'images/s':>10}{'ratio':>8}")
    for name, rate in rates.items():
        print(f"{name:<52}{rate:>10.1f}{rate / rates[REFERENCE]:>8.2f}")


if __name__ == "__main__":
    main()
