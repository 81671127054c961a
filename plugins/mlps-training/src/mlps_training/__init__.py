"""mlps-training: MLPerf Storage training workloads, emulated with DLIO (unet3d, resnet50, cosmoflow, retinanet)."""

__version__ = "0.1.0"
