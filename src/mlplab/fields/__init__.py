"""Neural fields: coordinate MLPs that fit images and 1-D signals.

`signals` loads a signal (scikit-image samples, image files, synthetic 1-D, WAV) on its grid,
`metrics` scores reconstructions (PSNR, SSIM), `fresh` picks an encoding's scale from the
untrained model's spectrum (FreSh), `model` composes encoding -> plain MLP -> linear head,
`plots` writes the reconstruction, the error map and the PSNR curve.
"""

from mlplab.fields.metrics import mse_to_psnr, psnr, ssim
from mlplab.fields.signals import Signal, load_signal

__all__ = ["Signal", "load_signal", "psnr", "ssim", "mse_to_psnr"]
