"""Multilayer perceptron (256-128) on MNIST; `configs/mlp.py:tiny` runs in seconds."""

from configs import default


def get_config(arg: str | None = None):
    config = default.get_config(arg)
    with config.unlocked():
        config.model = "mlp"
        # No conv layer: CAM and Grad-CAM do not apply.
        config.attribution.methods = (
            "gradient,gradient_x_input,integrated_gradients,smoothgrad,deconvnet,"
            "guided_backprop,occlusion"
        )
    return config
