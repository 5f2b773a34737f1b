"""Tensors read back from a checkpoint sit at aligned addresses, as fresh ones do."""

from __future__ import annotations

import torch
from safetensors.torch import load_file, save_file

from mlplab.train.checkpoint import ALIGNMENT, read_tensors


def test_read_tensors_are_aligned_and_equal(tmp_path) -> None:
    tensors = {"a": torch.arange(3.0), "b": torch.arange(5.0), "c": torch.randn(7, 3)}
    save_file(tensors, tmp_path / "t.safetensors")
    raw = load_file(tmp_path / "t.safetensors")
    assert any(t.data_ptr() % ALIGNMENT for t in raw.values())  # the file's own offsets are odd
    back = read_tensors(tmp_path / "t.safetensors")
    assert all(t.data_ptr() % ALIGNMENT == 0 for t in back.values())
    assert all(torch.equal(back[k], v) for k, v in tensors.items())
