"""Shared test set-up: quiet TensorFlow logs, import order, small fixtures (the helpers they
use are in helpers.py)."""

import importlib.util
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The CUDA build of torch that timm needs here ships triton, which segfaults when it is first
# imported after TensorFlow (torchvision imports it lazily). Importing both first avoids that.
for _module in ("torch", "triton"):
    if importlib.util.find_spec(_module) is not None:
        importlib.import_module(_module)

import helpers
import pytest


@pytest.fixture
def images():
    """Two deterministic 75x75 RGB images already scaled to [-1, 1]."""
    return helpers.images()
