"""PyTorch state dicts: timm's `inception_v4` and `inception_resnet_v2`, facenet-pytorch's
`InceptionResnetV1`.

Both libraries descend from the same port of the slim models, so one set of block tables serves
them: each table maps a module path inside a block to the slim scope of the same layer. A conv unit
(`branch1.0`) holds `.conv` and `.bn`; its BN lands in `<scope>/BatchNorm`. Torch kernels are
`[out, in, h, w]` (conv) and `[out, in]` (linear); Keras wants `[h, w, in, out]` and `[in, out]`.
"""

import os
from collections.abc import Mapping

import numpy as np

from keras_inception.errors import require
from keras_inception.weights.matching import Source

# ------------------------------------------------------------------------ blocks (module -> scope)

MIXED_3A = {"conv": "Branch_1/Conv2d_0a_3x3"}
MIXED_4A = {
    "branch0.0": "Branch_0/Conv2d_0a_1x1",
    "branch0.1": "Branch_0/Conv2d_1a_3x3",
    "branch1.0": "Branch_1/Conv2d_0a_1x1",
    "branch1.1": "Branch_1/Conv2d_0b_1x7",
    "branch1.2": "Branch_1/Conv2d_0c_7x1",
    "branch1.3": "Branch_1/Conv2d_1a_3x3",
}
MIXED_5A = {"conv": "Branch_0/Conv2d_1a_3x3"}
INCEPTION_A = {
    "branch0": "Branch_0/Conv2d_0a_1x1",
    "branch1.0": "Branch_1/Conv2d_0a_1x1",
    "branch1.1": "Branch_1/Conv2d_0b_3x3",
    "branch2.0": "Branch_2/Conv2d_0a_1x1",
    "branch2.1": "Branch_2/Conv2d_0b_3x3",
    "branch2.2": "Branch_2/Conv2d_0c_3x3",
    "branch3.1": "Branch_3/Conv2d_0b_1x1",
}
INCEPTION_B = {
    "branch0": "Branch_0/Conv2d_0a_1x1",
    "branch1.0": "Branch_1/Conv2d_0a_1x1",
    "branch1.1": "Branch_1/Conv2d_0b_1x7",
    "branch1.2": "Branch_1/Conv2d_0c_7x1",
    "branch2.0": "Branch_2/Conv2d_0a_1x1",
    "branch2.1": "Branch_2/Conv2d_0b_7x1",
    "branch2.2": "Branch_2/Conv2d_0c_1x7",
    "branch2.3": "Branch_2/Conv2d_0d_7x1",
    "branch2.4": "Branch_2/Conv2d_0e_1x7",
    "branch3.1": "Branch_3/Conv2d_0b_1x1",
}
INCEPTION_C = {
    "branch0": "Branch_0/Conv2d_0a_1x1",
    "branch1_0": "Branch_1/Conv2d_0a_1x1",
    "branch1_1a": "Branch_1/Conv2d_0b_1x3",
    "branch1_1b": "Branch_1/Conv2d_0c_3x1",
    "branch2_0": "Branch_2/Conv2d_0a_1x1",
    "branch2_1": "Branch_2/Conv2d_0b_3x1",
    "branch2_2": "Branch_2/Conv2d_0c_1x3",
    "branch2_3a": "Branch_2/Conv2d_0d_1x3",
    "branch2_3b": "Branch_2/Conv2d_0e_3x1",
    "branch3.1": "Branch_3/Conv2d_0b_1x1",
}
REDUCTION_A = {
    "branch0": "Branch_0/Conv2d_1a_3x3",
    "branch1.0": "Branch_1/Conv2d_0a_1x1",
    "branch1.1": "Branch_1/Conv2d_0b_3x3",
    "branch1.2": "Branch_1/Conv2d_1a_3x3",
}
# Reduction-B has Mixed_4a's two towers (1x1 -> 3x3; 1x1 -> 1x7 -> 7x1 -> 3x3), named alike.
INCEPTION_V4_REDUCTION_B = MIXED_4A
INCEPTION_RESNET_REDUCTION_B = {
    "branch0.0": "Branch_0/Conv2d_0a_1x1",
    "branch0.1": "Branch_0/Conv2d_1a_3x3",
    "branch1.0": "Branch_1/Conv2d_0a_1x1",
    "branch1.1": "Branch_1/Conv2d_1a_3x3",
    "branch2.0": "Branch_2/Conv2d_0a_1x1",
    "branch2.1": "Branch_2/Conv2d_0b_3x3",
    "branch2.2": "Branch_2/Conv2d_1a_3x3",
}
MIXED_5B = {
    "branch0": "Branch_0/Conv2d_1x1",
    "branch1.0": "Branch_1/Conv2d_0a_1x1",
    "branch1.1": "Branch_1/Conv2d_0b_5x5",
    "branch2.0": "Branch_2/Conv2d_0a_1x1",
    "branch2.1": "Branch_2/Conv2d_0b_3x3",
    "branch2.2": "Branch_2/Conv2d_0c_3x3",
    "branch3.1": "Branch_3/Conv2d_0b_1x1",
}
BLOCK35 = {
    "branch0": "Branch_0/Conv2d_1x1",
    "branch1.0": "Branch_1/Conv2d_0a_1x1",
    "branch1.1": "Branch_1/Conv2d_0b_3x3",
    "branch2.0": "Branch_2/Conv2d_0a_1x1",
    "branch2.1": "Branch_2/Conv2d_0b_3x3",
    "branch2.2": "Branch_2/Conv2d_0c_3x3",
    "conv2d": "Conv2d_1x1",
}
BLOCK17 = {
    "branch0": "Branch_0/Conv2d_1x1",
    "branch1.0": "Branch_1/Conv2d_0a_1x1",
    "branch1.1": "Branch_1/Conv2d_0b_1x7",
    "branch1.2": "Branch_1/Conv2d_0c_7x1",
    "conv2d": "Conv2d_1x1",
}
BLOCK8 = {
    "branch0": "Branch_0/Conv2d_1x1",
    "branch1.0": "Branch_1/Conv2d_0a_1x1",
    "branch1.1": "Branch_1/Conv2d_0b_1x3",
    "branch1.2": "Branch_1/Conv2d_0c_3x1",
    "conv2d": "Conv2d_1x1",
}
INCEPTION_RESNET_STEM = {
    "conv2d_1a": "Conv2d_1a_3x3",
    "conv2d_2a": "Conv2d_2a_3x3",
    "conv2d_2b": "Conv2d_2b_3x3",
    "conv2d_3b": "Conv2d_3b_1x1",
    "conv2d_4a": "Conv2d_4a_3x3",
}


def _block(module, scope, table):
    return {f"{module}.{path}": f"{scope}/{sub_scope}" for path, sub_scope in table.items()}


def _repeat(module, scope, count, table):
    """`module.0 ... module.{count-1}` -> slim.repeat's `scope_1 ... scope_count`."""
    modules = {}
    for i in range(count):
        modules |= _block(f"{module}.{i}", f"{scope}_{i + 1}", table)
    return modules


def _timm_inception_v4():
    modules = {
        "features.0": "Conv2d_1a_3x3",
        "features.1": "Conv2d_2a_3x3",
        "features.2": "Conv2d_2b_3x3",
    }
    blocks = (
        [("Mixed_3a", MIXED_3A), ("Mixed_4a", MIXED_4A), ("Mixed_5a", MIXED_5A)]
        + [(f"Mixed_5{letter}", INCEPTION_A) for letter in "bcde"]
        + [("Mixed_6a", REDUCTION_A)]
        + [(f"Mixed_6{letter}", INCEPTION_B) for letter in "bcdefgh"]
        + [("Mixed_7a", INCEPTION_V4_REDUCTION_B)]
        + [(f"Mixed_7{letter}", INCEPTION_C) for letter in "bcd"]
    )
    for index, (scope, table) in enumerate(blocks, start=len(modules)):
        modules |= _block(f"features.{index}", scope, table)
    return modules | {"last_linear": "Logits/Logits"}


def _residual_stages(containers, depths):
    """An Inception-ResNet's A, B, C stages with both reductions and the final `Block8`; timm and
    facenet-pytorch differ only in the names of the repeated blocks' containers and the counts."""
    (a, b, c), (depth_a, depth_b, depth_c) = containers, depths
    return (
        _repeat(a, "Repeat/block35", depth_a, BLOCK35)
        | _block("mixed_6a", "Mixed_6a", REDUCTION_A)
        | _repeat(b, "Repeat_1/block17", depth_b, BLOCK17)
        | _block("mixed_7a", "Mixed_7a", INCEPTION_RESNET_REDUCTION_B)
        | _repeat(c, "Repeat_2/block8", depth_c, BLOCK8)
        | _block("block8", "Block8", BLOCK8)
    )


def _timm_inception_resnet_v2():
    return (
        INCEPTION_RESNET_STEM
        | _block("mixed_5b", "Mixed_5b", MIXED_5B)
        | _residual_stages(("repeat", "repeat_1", "repeat_2"), (10, 20, 9))
        | {"conv2d_7b": "Conv2d_7b_1x1", "classif": "Logits/Logits"}
    )


def _facenet_inception_resnet_v1():
    return (
        INCEPTION_RESNET_STEM
        | {"conv2d_4b": "Conv2d_4b_3x3"}
        | _residual_stages(("repeat_1", "repeat_2", "repeat_3"), (5, 10, 5))
        | {"last_linear": "Bottleneck", "last_bn": "Bottleneck/BatchNorm"}
    )


# architecture -> (library, module table, tensors the library keeps that are no part of our model)
LAYOUTS = {
    "inception_v4": ("timm", _timm_inception_v4(), ()),
    "inception_resnet_v2": ("timm", _timm_inception_resnet_v2(), ()),
    # facenet-pytorch's `logits` classifies the training identities; our embedding model has no such
    # layer (FaceNet's slim checkpoints keep it outside the network scope).
    "inception_resnet_v1": ("facenet-pytorch", _facenet_inception_resnet_v1(), ("logits.",)),
}
PARAMETERS = {"weight": "weights", "bias": "biases"}
BATCH_NORM_PARAMETERS = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}
# BN's update counter: training bookkeeping, not a weight.
BOOKKEEPING = ".num_batches_tracked"


def read_state_dict(source, architecture):
    """Read a timm (Inception-v4, -ResNet-v2) or facenet-pytorch (Inception-ResNet-v1) state dict:
    a `.safetensors` file (read without PyTorch), a `.pth` / `.pt` / `.bin` file (needs PyTorch)
    or an in-memory dict of tensors or arrays.

    Names outside the tables are kept under their torch name, so they show up as unexpected.
    """
    library, modules, skipped = LAYOUTS[architecture]
    if isinstance(source, Mapping):
        description, state = f"in-memory {library} state dict", source
    else:
        description, state = f"{library} state dict {os.fspath(source)!r}", _load(source)
    tensors = {}
    for name, value in state.items():
        if name.endswith(BOOKKEEPING) or name.startswith(skipped):
            continue
        slim = _slim_name(name, modules)
        array = _to_numpy(value)
        tensors[slim or name] = (
            _keras_layout(array) if slim and slim.endswith("/weights") else array
        )
    return Source(description, tensors)


def _slim_name(name, modules):
    """`repeat.3.branch1.1.conv.weight` -> `Repeat/block35_4/Branch_1/Conv2d_0b_3x3/weights`."""
    module, _, parameter = name.rpartition(".")
    if module in modules:
        scope = modules[module]
    else:
        unit, _, part = module.rpartition(".")
        if unit not in modules or part not in ("conv", "bn"):
            return None
        scope = modules[unit] + ("/BatchNorm" if part == "bn" else "")
    names = BATCH_NORM_PARAMETERS if scope.endswith("BatchNorm") else PARAMETERS
    return f"{scope}/{names[parameter]}" if parameter in names else None


def _keras_layout(kernel):
    if kernel.ndim == 4:
        return kernel.transpose(2, 3, 1, 0)
    return kernel.T


def _to_numpy(value):
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _load(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file.")
    if path.endswith(".safetensors"):
        safetensors = require("safetensors.numpy", f"Reading {path}", "safetensors")
        reader, kind = safetensors.load_file, "safetensors file"
    else:
        torch = require("torch", f"Reading {path} (a .safetensors file would not)", "torch")

        def reader(path):  # weights only: an untrusted file's pickled code never runs
            return torch.load(path, map_location="cpu", weights_only=True)

        kind = "PyTorch weights file (read with weights_only=True)"
    try:
        state = reader(path)
    except Exception as error:  # each library has its own errors for a damaged file
        raise ValueError(f"{path}: not a readable {kind} ({type(error).__name__}).") from None
    # timm's training checkpoints wrap the weights beside the optimizer state.
    return state.get("state_dict", state)
