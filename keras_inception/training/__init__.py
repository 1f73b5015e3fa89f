"""Training the paper's way: recipes, the trainer around `model.fit`, and the dead-network
detector.

The names below load their module on first use, so that the package root can import
`keras_inception.training.optimizer` at start-up (to register the optimizer saved models refer
to) without pulling in tf.data, keras-cv and matplotlib.
"""

import importlib

_EXPORTS = {
    "DeadNetworkDetector": "callbacks",
    "DeadNetworkError": "callbacks",
    "LearningRateLogger": "callbacks",
    "Recipe": "recipe",
    "RecipeError": "recipe",
    "bundled_recipes": "recipe",
    "load_recipe": "recipe",
    "recipe_to_toml": "recipe",
    "TrainingResult": "trainer",
    "build_model": "trainer",
    "fit": "trainer",
    "train": "trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
