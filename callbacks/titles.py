"""Short method titles for grid columns and plot legends: grid cells are narrow."""

METHOD_TITLES = {
    "gradient": "grad", "gradient_x_input": "grad*in", "integrated_gradients": "IG",
    "smoothgrad": "SmoothG", "deconvnet": "deconv", "guided_backprop": "GuidedBP",
    "cam": "CAM", "grad_cam": "Grad-CAM", "guided_grad_cam": "G.Grad-CAM",
    "occlusion": "occlusion",
}
