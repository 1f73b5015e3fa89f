"""The paper's method as `model.compile` takes it: label-smoothed cross-entropy, slim's weight
decay and the recipe's optimizer and schedule.

Plain Keras, unlike the trainer with its TensorFlow input pipeline, so that it compiles a model on
any Keras backend (benchmarks/gpu_training.py runs it on JAX where TensorFlow is not installed).
"""

import keras

from keras_inception.training.optimizer import build_optimizer


@keras.saving.register_keras_serializable(package="keras_inception")
class SlimL2(keras.regularizers.L2):
    """Slim's `l2_regularizer(weight_decay)`: weight_decay * sum(w**2) / 2, which is Keras's
    `L2(weight_decay / 2)`.

    Keras computes it as a square, a sum and a product per kernel, with more again in the
    gradient (a broadcast of the sum among them). On TensorFlow this is slim's own single
    `L2Loss` op, whose gradient is one product: Inception-ResNet-v2's traced training step has
    1,960 ops fewer (docs/scaling.md). Other backends take Keras's computation.
    """

    def __init__(self, weight_decay):
        self.weight_decay = float(weight_decay)
        super().__init__(self.weight_decay / 2)

    def __call__(self, x):
        if keras.backend.backend() != "tensorflow":
            return super().__call__(x)
        import tensorflow as tf  # only the TensorFlow backend gets here

        return self.weight_decay * tf.nn.l2_loss(x)

    def get_config(self):
        return {"weight_decay": self.weight_decay}


def add_weight_decay(model, weight_decay):
    """Slim's weight decay: an L2 penalty (`SlimL2`) on every convolution and dense kernel that
    trains.

    A penalty in the loss (rather than the optimizer's decoupled `weight_decay`) is what the
    paper trained with: it goes through RMSProp's scaling and the gradient clipping like any
    other gradient. Keras adds the penalty of trainable weights only, so a frozen layer's
    regulariser costs nothing; it is set in each layer's config as well as on its kernel, so a
    saved and reloaded model keeps it for fine-tuning.
    """
    if not weight_decay:
        return
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and hasattr(layer, "kernel_regularizer"):
            layer.kernel_regularizer = SlimL2(weight_decay)
            kernel.regularizer = layer.kernel_regularizer


def compile_for_recipe(model, recipe, steps_per_epoch, phase=None):
    """Compile for the recipe: label-smoothed cross-entropy on one-hot labels (weighted by
    `aux_loss_weight` on a second, auxiliary output), top-1 and top-5 accuracy, slim's weight
    decay, and the recipe's optimizer and schedule, over the training phase `phase` (a
    `finetune.Phase`; default: the whole run at the optimizer's rate).

    The optimizer is built here, eagerly, so its weight average starts at the weights the model
    has now: load weights before compiling, as Keras expects. `model.fit` would build it inside
    its first traced step, which then traces twice (a trace that creates variables is repeated)
    and initialises each of IR-v2's 1,470 slot variables behind a conditional (docs/scaling.md
    has the wait this saved).
    """
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=recipe.training.label_smoothing)
    outputs = len(model.outputs)
    metrics = [
        keras.metrics.CategoricalAccuracy(name="top1"),
        keras.metrics.TopKCategoricalAccuracy(5, name="top5"),
    ]
    add_weight_decay(model, recipe.training.weight_decay)
    schedule = (
        {} if phase is None else {"learning_rate": phase.learning_rate, "epochs": phase.epochs}
    )
    model.compile(
        optimizer=build_optimizer(recipe, steps_per_epoch, **schedule),
        loss=[loss] * outputs if outputs > 1 else loss,
        loss_weights=[1.0, recipe.model.aux_loss_weight] if outputs > 1 else None,
        metrics=[metrics] + [[]] * (outputs - 1) if outputs > 1 else metrics,
    )
    model.optimizer.build(model.trainable_variables)
