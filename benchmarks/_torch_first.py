"""Imported first by the benchmarks that run PyTorch beside TensorFlow: the CUDA build of torch
installed here ships triton, which crashes when it is first imported after TensorFlow (torch
imports it lazily, e.g. for `torch.autocast`)."""

import importlib.util

for _module in ("torch", "triton"):
    if importlib.util.find_spec(_module) is not None:
        importlib.import_module(_module)
