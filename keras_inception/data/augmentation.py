"""Augmentation taken from keras-cv: the Inception random crop, the one piece core Keras lacks,
and for small data sets RandAugment, MixUp and CutMix (off by default).

This is the only module that imports keras-cv, so moving to keras-hub touches one file.

The crop and RandAugment draw every random number from the `tf.random.Generator` they are given,
so setting its state replays them: a resumed epoch sees the same images. MixUp and CutMix cannot
be made to: keras-cv 0.9 draws their partners (`tf.random.shuffle`), mixing weights
(`tf.random.gamma`) and CutMix's boxes (`tf.random.uniform`) from TensorFlow's stateful random
ops, which no generator reaches. What holds: with TensorFlow's global seed set (`train` sets it)
and the batches mixed one after another, those ops start afresh with each pass over the data, so
an epoch read again, or first read by a resumed run, mixes the same way. The price is that every
pass draws the same sequence of weights, partner positions and boxes, applied to that pass's
differently shuffled batches. Without a global seed the mixing does not replay.
"""

import keras_cv
import tensorflow as tf

from keras_inception.keras_internals import global_generator, set_random_generator

ASPECT_RATIO_RANGE = (3 / 4, 4 / 3)
VALUE_RANGE = (-1.0, 1.0)  # the pixels after slim's preprocessing
# Any nonzero seed gives a keras-cv layer a generator of its own (replaced by ours) instead of
# TensorFlow's global one, which op determinism forbids creating.
_OWN_GENERATOR = 1


class UniformFactor(keras_cv.core.FactorSampler):
    """A factor drawn uniformly from [lower, upper) by a `tf.random.Generator`."""

    def __init__(self, lower, upper, generator):
        self.lower, self.upper, self.generator = lower, upper, generator

    def __call__(self, shape=(), dtype="float32"):
        return self.generator.uniform(shape, self.lower, self.upper, dtype=dtype)


class NormalFactor(keras_cv.core.FactorSampler):
    """keras-cv's `NormalFactorSampler` (a normal draw clipped to [min_value, max_value]), drawn
    by a `tf.random.Generator`."""

    def __init__(self, sampler, generator):
        self.sampler, self.generator = sampler, generator

    def __call__(self, shape=(), dtype="float32"):
        sampler = self.sampler
        drawn = self.generator.normal(shape, sampler.mean, sampler.stddev, dtype=dtype)
        return tf.clip_by_value(drawn, sampler.min_value, sampler.max_value)


def inception_crop(image_size, min_area, generator):
    """A layer that crops a random box (area fraction in [min_area, 1], aspect ratio in
    [3/4, 4/3]) from one float image and resizes it bilinearly to `image_size` (height, width),
    every number it draws coming from `generator`."""
    layer = keras_cv.layers.RandomCropAndResize(
        target_size=tuple(image_size),
        crop_area_factor=(min_area, 1.0),
        aspect_ratio_factor=ASPECT_RATIO_RANGE,
        interpolation="bilinear",
        seed=_OWN_GENERATOR,
    )
    return _replayable(layer, generator)


def rand_augment(magnitude, generator):
    """keras-cv's RandAugment for one float32 image in [-1, 1]: three of its ten operations
    (colour, contrast, solarize, shear, translate...) each applied with probability 10/11, at
    strength `magnitude` in [0, 1], every number drawn from `generator`."""
    with global_generator(generator):  # for the one operation that ignores the seed
        layer = keras_cv.layers.RandAugment(
            value_range=VALUE_RANGE, magnitude=magnitude, seed=_OWN_GENERATOR
        )
    return _replayable(layer, generator)


def mix_batches(mixup, cutmix, num_classes, generator):
    """A function of an (images, int32 labels) batch that mixes it with keras-cv's MixUp
    (Beta alpha `mixup`) or CutMix (alpha `cutmix`), 0 being off and a choice drawn from
    `generator` for each batch when both are on; labels come back as float32 one-hot rows
    [batch, num_classes] mixed like the images. The mixing replays only as said above; CutMix
    weights the labels by its box before clipping the box to the image, so near a border the
    label over-weights the pasted image (clovaai/CutMix-PyTorch#1 fixed this in the original)."""
    mixers = [
        _replayable(kind(alpha=alpha, seed=_OWN_GENERATOR), generator)
        for kind, alpha in ((keras_cv.layers.MixUp, mixup), (keras_cv.layers.CutMix, cutmix))
        if alpha > 0
    ]
    if not mixers:
        raise ValueError("mix_batches needs mixup or cutmix above 0.")

    def mix(images, labels):
        batch = {"images": images, "labels": tf.one_hot(labels, num_classes)}
        if len(mixers) == 1:
            mixed = mixers[0](batch)
        else:
            choice = generator.uniform([], maxval=len(mixers), dtype=tf.int32)
            # Each layer writes into the dictionary it is given: each branch gets its own.
            mixed = tf.switch_case(choice, [lambda m=m: m(dict(batch)) for m in mixers])
        return mixed["images"], mixed["labels"]

    return mix


def _replayable(layer, generator):
    """`layer`, with it and every layer inside it computing in float32 (whatever the precision
    policy: these run on the input pipeline) and drawing from `generator`, factors included."""
    for sublayer in set_random_generator(layer, generator):
        sublayer.dtype_policy = "float32"
        for name, value in list(vars(sublayer).items()):
            if isinstance(value, keras_cv.core.FactorSampler):
                setattr(sublayer, name, _drawn_by(generator, value))
    return layer


def _drawn_by(generator, sampler):
    """keras-cv's factor `sampler`, drawn by `generator`."""
    if isinstance(sampler, keras_cv.core.UniformFactorSampler):
        return UniformFactor(sampler.lower, sampler.upper, generator)
    if isinstance(sampler, keras_cv.core.NormalFactorSampler):
        return NormalFactor(sampler, generator)
    if isinstance(sampler, keras_cv.core.ConstantFactorSampler):
        return sampler
    raise TypeError(f"keras-cv's {type(sampler).__name__} has no generator-drawn version here.")
