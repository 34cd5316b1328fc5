"""Short method titles for grid columns and plot legends: grid cells are narrow."""

METHOD_TITLES = {
    "gradient": "grad", "gradient_x_input": "grad*in", "integrated_gradients": "IG",
    "smoothgrad": "SmoothG", "deconvnet": "deconv", "guided_backprop": "GuidedBP",
    "cam": "CAM", "grad_cam": "Grad-CAM", "guided_grad_cam": "G.Grad-CAM",
    "occlusion": "occlusion", "vargrad": "VarGrad", "gradient_shap": "GradSHAP",
    "blur_ig": "BlurIG", "guided_ig": "GuidedIG", "deeplift": "DeepLIFT",
    "deeplift_shap": "DL-SHAP", "lrp": "LRP", "grad_cam_plus_plus": "Grad-CAM++",
    "hires_cam": "HiResCAM", "xgrad_cam": "XGrad-CAM", "layer_cam": "LayerCAM",
    "eigen_cam": "Eigen-CAM", "score_cam": "Score-CAM", "ablation_cam": "Abl-CAM",
    "feature_ablation": "ablation", "rise": "RISE", "kernel_shap": "KernelSHAP", "lime": "LIME",
    "xrai": "XRAI",
}
