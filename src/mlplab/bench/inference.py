"""Inference: batch-1 latency and large-batch throughput of `mlplab.infer.predict` vs a bare
`torch.inference_mode()` call of the same module and vs onnxruntime on its ONNX export."""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from mlplab.bench.training import D_IN, residual_mlp
from mlplab.infer import predict


class _Logits(nn.Module):
    """`MLPModel` with a single positional input, for `torch.onnx.export`."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def onnx_session(model: nn.Module, threads: int):  # noqa: ANN201  (onnxruntime session)
    """Export `model` (eval mode, dynamic batch) and open an onnxruntime CPU session."""
    import onnxruntime as ort

    path = Path(tempfile.mkdtemp(prefix="mlplab-bench-")) / "model.onnx"
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(_Logits(model.eval()), (torch.zeros(2, D_IN),), dynamo=True,
                                    dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1)}},
                                    input_names=["x"], output_names=["logits"], verbose=False)
        program.save(str(path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # no busy-waiting after a run (torch runs with OMP_WAIT_POLICY=PASSIVE): spinning threads
    # would steal the cores from whichever path is timed next
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def median_seconds(paths: dict[str, Callable[[], object]], *, calls: int,
                   rounds: int = 7) -> dict[str, float]:
    """Per path, the median over `rounds` of the mean time of `calls` back-to-back calls;
    the paths take turns in every round, so a busy spell on a shared machine hits all."""
    for fn in paths.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, fn in paths.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(t) for name, t in times.items()}


def _paths(model: nn.Module, session, x: torch.Tensor) -> dict[str, Callable[[], object]]:  # noqa: ANN001
    xn = x.numpy()

    def bare() -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    return {"mlplab predict": lambda: predict(model, x), "bare inference_mode": bare,
            "onnxruntime": lambda: session.run(None, {"x": xn})}


def measure_inference(widths: list[int], *, big_batch: int = 4096, latency_calls: int = 200,
                      log: Callable[[str], None] = print) -> list[dict]:
    """Per width: batch-1 latency (µs) and batch-`big_batch` rows/s for the three paths."""
    rows = []
    threads = torch.get_num_threads()
    for width in widths:
        model = residual_mlp(width).eval()
        session = onnx_session(model, threads)
        for batch in (1, big_batch):
            x = torch.randn(batch, D_IN)
            paths = _paths(model, session, x)
            seconds = median_seconds(paths, calls=latency_calls if batch == 1 else 1)
            for name, sec in seconds.items():
                rows.append({"width": width, "batch": batch, "path": name,
                             "latency_us": sec * 1e6, "rows_per_s": batch / sec})
                log(f"  width {width:5d} batch {batch:5d} {name:20s} {sec * 1e6:10.1f} µs"
                    f"  {batch / sec:12.0f} rows/s")
    return rows
