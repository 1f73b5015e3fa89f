"""Training the paper's way: recipes, the trainer around `model.fit`, and the dead-network
detector.

The names below load their module on first use, so that the package root can import
`keras_inception.training.optimizer` at start-up (to register the optimizer saved models refer
to) without pulling in tf.data, keras-cv and matplotlib.
"""

from keras_inception.lazy import lazy_exports

_EXPORTS = {
    "DeadNetworkDetector": "keras_inception.training.callbacks",
    "DeadNetworkError": "keras_inception.errors",
    "EpochLogger": "keras_inception.training.callbacks",
    "Recipe": "keras_inception.training.recipe",
    "RecipeError": "keras_inception.errors",
    "RunFolder": "keras_inception.run_folder",
    "bundled_recipes": "keras_inception.training.recipe",
    "load_recipe": "keras_inception.training.recipe",
    "recipe_to_toml": "keras_inception.training.recipe",
    "TrainingResult": "keras_inception.training.trainer",
    "build_model": "keras_inception.training.trainer",
    "compile_for_recipe": "keras_inception.training.method",
    "fit": "keras_inception.training.trainer",
    "load_recipe_weights": "keras_inception.training.trainer",
    "set_trainable": "keras_inception.training.finetune",
    "training_phases": "keras_inception.training.finetune",
    "recipe_callbacks": "keras_inception.training.trainer",
    "steps_per_epoch": "keras_inception.training.trainer",
    "train": "keras_inception.training.trainer",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
