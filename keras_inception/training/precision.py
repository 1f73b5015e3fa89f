"""The precision a recipe's `training.precision = "auto"` means on the machine at hand.

Mixed precision keeps the variables, the classifier and the loss in float32 and computes the body
in 16 bits, which keeps the accuracy of float32 training. bfloat16 needs no loss scaling; float16
does (Keras adds it when it compiles under `mixed_float16`). Where the hardware computes in 16 bits
natively training runs faster (1.6-1.7x on an AVX512-BF16 CPU, docs/scaling.md); where it does
not, 16 bits is emulated and slower, so float32 stays.
"""

from pathlib import Path

# CPU features that give native bfloat16 matrix products (AVX512-BF16, AMX), as /proc/cpuinfo spells them.
BFLOAT16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
# NVIDIA compute capabilities: bfloat16 from Ampere (8.0), float16 tensor cores from Volta (7.0).
BFLOAT16_GPU = (8, 0)
FLOAT16_GPU = (7, 0)


def resolve_precision(precision):
    """A `keras.mixed_precision` policy name: `precision` itself, or for `"auto"` the fastest one
    that keeps accuracy here (the first GPU decides where there is one, else the CPU)."""
    if precision != "auto":
        return precision
    import tensorflow as tf  # for its device list, only where "auto" is asked for

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return gpu_precision(details.get("compute_capability", (0, 0)))
    return cpu_precision(cpu_flags())


def gpu_precision(compute_capability):
    if compute_capability >= BFLOAT16_GPU:
        return "mixed_bfloat16"
    if compute_capability >= FLOAT16_GPU:
        return "mixed_float16"
    return "float32"


def cpu_precision(flags):
    return "mixed_bfloat16" if flags & BFLOAT16_CPU_FLAGS else "float32"


def cpu_flags(cpuinfo=Path("/proc/cpuinfo")):
    """The CPU's feature flags; empty where the system does not list them (outside Linux)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return frozenset(value.split())
    return frozenset()
