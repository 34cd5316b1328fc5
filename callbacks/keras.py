"""The attribution and sanity callbacks as Keras callbacks, for `model.fit(callbacks=[...])`.

Keras 3 on the JAX backend (the `[keras]` extra). Each wraps the Flax callback of the same
name: the model is the one `fit` trains (Keras hands it over with `set_model`), probes,
writer and options are as for the Flax callbacks. Epochs are numbered from 1 and the untrained
model is step 0, as in the Flax callbacks (Keras numbers epochs from 0); the global step of
`on_train_batch_end` is the optimizer's iteration count. Grad-CAM takes a Keras layer name
(`layer="conv2d_1"`); parameter randomization re-initializes each layer with its own
initializers.

    model.fit(x, y, epochs=3, callbacks=[
        KerasAttributionCallback(probes, labels, TensorBoardWriter("runs/keras"))])
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402  (after choosing the backend)

from callbacks.attribution_callback import AttributionCallback  # noqa: E402
from callbacks.base import checked_probes, method_options  # noqa: E402
from callbacks.sanity_callback import SanityCallback  # noqa: E402


class _KerasWrapper(keras.callbacks.Callback):
    """Forwards Keras's hooks to a Flax callback built on the model `fit` trains."""

    _flax_callback: type = AttributionCallback

    def __init__(self, probe_images, probe_labels, writer, **options):
        super().__init__()
        if keras.backend.backend() != "jax":
            raise ValueError(f"The callbacks need Keras's JAX backend (KERAS_BACKEND=jax); "
                             f"this Keras runs on {keras.backend.backend()!r}.")
        # Checked now, before training: the model only arrives with set_model.
        self._probes = checked_probes(probe_images, probe_labels)
        if "methods" in options:
            method_options(options["methods"])
        self._writer = writer
        self._options = options
        self.callback = None

    def on_train_begin(self, logs=None):
        if self.callback is None:
            self.callback = self._flax_callback(self.model, *self._probes, self._writer,
                                                **self._options)
        self.callback.set_params(self.params)
        self._step = int(self.model.optimizer.iterations)
        self.callback.on_train_begin(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        self.callback.on_epoch_begin(epoch + 1, self.model)

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        # Reading `self.model` syncs Keras's JAX state: only at steps the schedule fires at.
        if self.callback.wants_step(self._step):
            self.callback.on_train_batch_end(self._step, self.model, logs)
        else:
            self.callback.note_step(self._step)

    def on_epoch_end(self, epoch, logs=None):
        self.callback.on_epoch_end(epoch + 1, self.model, logs)

    def on_train_end(self, logs=None):
        self.callback.on_train_end(self.model)

    def wait(self):
        """Blocks until everything queued is written (see the Flax callback)."""
        if self.callback is not None:
            self.callback.wait()


class KerasAttributionCallback(_KerasWrapper):
    """`callbacks.AttributionCallback` for `keras.Model.fit`."""

    _flax_callback = AttributionCallback


class KerasSanityCallback(_KerasWrapper):
    """`callbacks.SanityCallback` for `keras.Model.fit`."""

    _flax_callback = SanityCallback
