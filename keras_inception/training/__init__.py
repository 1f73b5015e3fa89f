"""Training the paper's way: recipes, the trainer around `model.fit`, and the dead-network
detector."""

from keras_inception.training.callbacks import (
    DeadNetworkDetector,
    DeadNetworkError,
    LearningRateLogger,
)
from keras_inception.training.recipe import (
    Recipe,
    RecipeError,
    bundled_recipes,
    load_recipe,
    recipe_to_toml,
)
from keras_inception.training.trainer import TrainingResult, build_model, fit, train

__all__ = [
    "DeadNetworkDetector",
    "DeadNetworkError",
    "LearningRateLogger",
    "Recipe",
    "RecipeError",
    "TrainingResult",
    "build_model",
    "bundled_recipes",
    "fit",
    "load_recipe",
    "recipe_to_toml",
    "train",
]
