"""`implementation="native"` (the fused C++ grid lookup) against the pure-PyTorch path: the same
outputs bit for bit, table gradients to float rounding and the same on 1 and 2 threads; the
torch path where coordinates need a gradient; clear errors for what it does not cover; and a
field fit through `fit-image --native`. The first test compiles the op (~20-40 s, once per
machine: torch's extension cache keeps it)."""

from __future__ import annotations

import shutil

import pytest
import torch

from mlplab.errors import MlplabError, SpecError
from mlplab.nn import grid_native
from mlplab.nn.hashgrid import GridEncoding

needs_compiler = pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler"
)

CASES = [
    (1, 2, {"log2_table": 4}),
    (2, 2, {"log2_table": 8}),
    (2, 1, {"log2_table": 8}),
    (2, 3, {"log2_table": 8}),  # a feature count the op does not specialise
    (2, 4, {"hashed": False}),
    (3, 2, {"log2_table": 10}),
]


def pair(d: int, features: int, options: dict) -> tuple[GridEncoding, GridEncoding]:
    """A torch-path grid and a native one with the same (non-trivial) table."""
    options = {
        "levels": 5,
        "features": features,
        "base_resolution": 2,
        "finest_resolution": 40,
        **options,
    }
    torch.manual_seed(d * 10 + features)
    eager = GridEncoding(d, **options)
    torch.nn.init.uniform_(eager.table, -1.0, 1.0)
    native = GridEncoding(d, implementation="native", **options)
    assert native.implementation == "native"  # built, not fallen back to the torch path
    native.load_state_dict(eager.state_dict())
    return eager, native


@needs_compiler
@pytest.mark.parametrize(("d", "features", "options"), CASES)
def test_native_lookup_matches_the_torch_path(d: int, features: int, options: dict) -> None:
    eager, native = pair(d, features, options)
    if options.get("hashed", True):
        assert any(eager.dense_levels) and not all(eager.dense_levels)  # both level kinds
    x = torch.rand(1000, d) * 2.2 - 1.1  # some outside [-1, 1]: clamped onto the grid
    g = torch.randn(1000, eager.d_out)
    out_eager, out_native = eager(x), native(x)
    assert torch.equal(out_native, out_eager)  # same float operations, same order
    want = torch.autograd.grad(out_eager, eager.table, g)[0]
    got = torch.autograd.grad(out_native, native.table, g)[0]
    assert got.abs().max() > 0
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())
    threads = torch.get_num_threads()
    try:  # the backward splits levels between threads, never a row: same sums on any count
        for n in (1, 2):
            torch.set_num_threads(n)
            again = torch.autograd.grad(native(x), native.table, g)[0]
            assert torch.equal(again, got)
    finally:
        torch.set_num_threads(threads)


@needs_compiler
def test_coordinate_gradients_take_the_torch_path() -> None:
    eager, native = pair(2, 2, {"log2_table": 8})
    x = (torch.rand(200, 2) * 2 - 1).requires_grad_(True)
    assert not native.native_serves(x) and native.native_serves(x.detach())
    g = torch.randn(200, eager.d_out)
    want = torch.autograd.grad(eager(x), (eager.table, x), g)
    got = torch.autograd.grad(native(x), (native.table, x), g)
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)
    with torch.no_grad():  # inference: the native loop, the same values
        assert torch.equal(native(x), eager(x))


def test_what_native_does_not_cover_gets_a_clear_error() -> None:
    with pytest.raises(SpecError, match="implementation"):
        GridEncoding(2, implementation="cuda")
    with pytest.raises(SpecError, match="kernel='linear'"):
        GridEncoding(2, kernel="gaussian", implementation="native")
    with pytest.raises(ValueError, match="at most 3 coordinates"):
        GridEncoding(4, implementation="native")
    from mlplab.fields.presets import field_run_spec

    with pytest.raises(SpecError, match="--native"):
        field_run_spec("skimage:camera", "fourier", native=True)
    raw = field_run_spec("skimage:camera", "hashgrid", native=True)
    assert raw["model"]["adapter_options"]["implementation"] == "native"


def test_a_missing_compiler_is_named_and_the_torch_path_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(grid_native.shutil, "which", lambda name: None)
    with pytest.raises(MlplabError, match="C\\+\\+ compiler"):
        grid_native.load.__wrapped__()  # the uncached build step
    import mlplab.nn.hashgrid as hashgrid

    monkeypatch.setattr(hashgrid, "load_native", grid_native.load.__wrapped__)
    with pytest.warns(UserWarning, match="C\\+\\+ compiler.*torch lookup"):
        grid = GridEncoding(2, levels=3, log2_table=6, implementation="native")
    assert grid.implementation == "torch"  # a saved native model still loads and predicts
    x = torch.rand(50, 2) * 2 - 1
    assert grid(x).shape == (50, grid.d_out)


@needs_compiler
def test_tracing_sees_the_torch_path() -> None:
    eager, native = pair(2, 2, {"log2_table": 8})
    x = torch.rand(64, 2) * 2 - 1
    program = torch.export.export(native, (x,))
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert not any("mlplab_grid" in t for t in targets)
    assert torch.equal(program.module()(x), eager(x))


@needs_compiler
def test_fit_image_native_trains_the_same_field(tmp_path) -> None:
    from mlplab.cli import run
    from mlplab.fields.fit import fit_image

    runs = {
        native: fit_image(
            "skimage:camera",
            size=32,
            epochs=40,
            out=str(tmp_path / str(native)),
            threads=1,
            native=native,
        )[1]
        for native in (False, True)
    }
    assert runs[True]["psnr"] > 18.0  # well past the mean image's ~11 dB
    assert abs(runs[True]["psnr"] - runs[False]["psnr"]) < 0.5  # gradients differ by rounding
    assert (tmp_path / "True" / "reconstruction.png").exists()
    assert '"implementation": "native"' in (tmp_path / "True" / "spec.json").read_text()
    code = run(
        [
            "fit-image",
            "skimage:camera",
            "--encoding",
            "siren",
            "--native",
            "--out",
            str(tmp_path / "bad"),
        ]
    )
    assert code != 0 and not (tmp_path / "bad").exists()


@pytest.mark.parametrize("native", [False, True])
def test_hash_grid_field_exports_to_onnx(tmp_path, native: bool) -> None:
    """The traced graph takes the per-feature gather (no dtype-reinterpreting views, which
    ONNX cannot lower) and the torch path: onnxruntime gives the model's predictions."""
    ort = pytest.importorskip("onnxruntime")
    from mlplab.export import export_onnx, load_predictor
    from mlplab.fields.fit import fit_image

    run = tmp_path / "run"
    fit_image("skimage:camera", size=16, epochs=2, out=str(run), threads=1, native=native)
    onnx = export_onnx(run, tmp_path / "field.onnx")
    predictor, _ = load_predictor(run)
    x = torch.rand(300, 2) * 2 - 1
    with torch.no_grad():
        want = predictor(x).numpy()
    got = ort.InferenceSession(str(onnx)).run(None, {"x_num": x.numpy()})[0]
    assert got.shape == want.shape
    torch.testing.assert_close(torch.from_numpy(got), torch.from_numpy(want), rtol=1e-5, atol=1e-5)


@needs_compiler
def test_flop_counts_do_not_depend_on_the_implementation() -> None:
    from mlplab.count import count

    eager, native = pair(2, 2, {"log2_table": 8})
    x = torch.rand(64, 2) * 2 - 1
    assert count(native, x) == count(eager, x)
    assert count(native, x)["flops_per_sample"] > 0
