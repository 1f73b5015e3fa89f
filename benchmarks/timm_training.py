"""timm's networks trained with the recipe's method in a plain PyTorch loop: the reference side of
the training benchmarks (benchmarks/training_vs_timm.py on the CPU, benchmarks/gpu_training.py on
a GPU).

A step is the recipe's: label-smoothed cross-entropy, L2 weight decay in the gradient (as the
loss penalty gives), `torch.optim.RMSprop` (rho, momentum, epsilon from the recipe), global
gradient clipping (`clip_grad_norm_`) and the weight average (`timm.utils.ModelEmaV3`). bf16 is
`torch.autocast`; channels_last puts the model and its inputs in NHWC, timm's fastest layout where
oneDNN or cuDNN compute in bf16.
"""

import time

import timing
import timm
import torch


def timm_runner(
    name, recipe, images, labels, batch, *, classes, bfloat16, channels_last, device="cpu"
):
    """A function that trains timm's network `name` (`classes` outputs) for one pass over
    `images` (NHWC floats) and `labels` (class ids) on `device` and returns the images/s of the
    steps after the first; each step ends when the device has finished it."""
    device = torch.device(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = timm.create_model(name, num_classes=classes, drop_rate=recipe.model.dropout_rate)
    model = model.train().to(device, memory_format=memory_format)
    settings = recipe.optimizer
    optimizer = torch.optim.RMSprop(
        model.parameters(),
        lr=settings.learning_rate,
        alpha=settings.rho,
        eps=settings.epsilon,
        momentum=settings.momentum,
        weight_decay=recipe.training.weight_decay,
    )
    average = timm.utils.ModelEmaV3(model, decay=settings.ema_momentum)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=recipe.training.label_smoothing)
    nchw = torch.from_numpy(images).permute(0, 3, 1, 2)
    batches = [
        (x.to(device).contiguous(memory_format=memory_format), y.to(device))
        for x, y in zip(nchw.split(batch), torch.from_numpy(labels).split(batch))
    ]
    finish = torch.cuda.synchronize if device.type == "cuda" else lambda: None

    def step(x, y):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
            loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.global_clipnorm)
        optimizer.step()
        average.update(model)

    def run():
        step_ends = []
        for x, y in batches:
            step(x, y)
            finish()
            step_ends.append(time.perf_counter())
        return timing.images_per_second(step_ends, batch)

    return run
