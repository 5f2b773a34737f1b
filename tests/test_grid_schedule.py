"""The KAN grid schedule as an epoch hook: `train.grid_update_epochs` and `train.grid_extend`
inside a training run, the checks on the spec, and runs saved and resumed across an extension."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import crash_after_checkpoint
from torch.func import functional_call

import mlplab
from mlplab.errors import SpecError
from mlplab.nn.kan import KANUnit
from mlplab.nn.rbf import RBFUnit
from mlplab.rundir import check_run
from mlplab.spec import parse_spec
from mlplab.train import checkpoint as ckpt
from mlplab.train.hooks import Hook, grid_units
from mlplab.train.trainer import Trainer

KAN = {"unit": "kan", "unit_options": {"grid": 4}, "width": 8, "depth": 1}


class Outputs(Hook):
    """Records, per completed-epoch count, the model's outputs on the training rows at the end of
    that epoch and again at the start of the next one (after the spec's hooks ran)."""

    def __init__(self) -> None:
        self.end: dict[int, torch.Tensor] = {}
        self.start: dict[int, torch.Tensor] = {}
        self.optimizers: dict[int, object] = {}

    def _outputs(self, trainer: Trainer) -> torch.Tensor:
        trainer.model.eval()
        with torch.no_grad():
            out = trainer.model(*trainer.data.train.inputs(slice(None)))
        trainer.model.train()
        return out

    def on_epoch_start(self, trainer: Trainer) -> None:
        self.start[trainer.state.epoch] = self._outputs(trainer)
        self.optimizers[trainer.state.epoch] = trainer.optimizer

    def on_epoch_end(self, trainer: Trainer) -> None:
        self.end[trainer.state.epoch] = self._outputs(trainer)
        self.optimizers[-trainer.state.epoch] = trainer.optimizer


def run_with_hook(tiny_spec, **train) -> tuple[Trainer, Outputs]:
    from mlplab.run import prepare_run

    spec = parse_spec(tiny_spec(model=KAN, train={"epochs": 4, **train}))
    data, task, model, _ = prepare_run(spec)
    hook = Outputs()
    trainer = Trainer(model, task, data, spec.train, seed=spec.seed, quiet=True, hooks=[hook])
    trainer.fit()
    return trainer, hook


def close(before: torch.Tensor, after: torch.Tensor, tol: float) -> bool:
    return bool(((after - before).norm() / before.norm()) < tol)


def test_grid_update_in_a_run_keeps_the_function(tiny_spec):
    trainer, hook = run_with_hook(tiny_spec, grid_update_epochs=[2])
    # knots moved (to a wider, so coarser grid here) and coefficients refitted: 2% apart
    # (without the refit, 12%)
    assert close(hook.end[2], hook.start[2], 4e-2)
    assert not torch.allclose(hook.end[2], hook.start[2])  # ... and the grid did move
    assert hook.optimizers[2] is not hook.optimizers[-2]  # state of the old coefficients dropped
    assert hook.optimizers[1] is hook.optimizers[-1]  # epochs without a grid change keep it
    assert trainer.state.epoch == 4


def test_grid_extension_changes_the_grid_and_the_run_continues(tiny_spec):
    trainer, hook = run_with_hook(tiny_spec, grid_extend={2: 9}, patience=None)
    units = list(grid_units(trainer.model))
    assert units and all(u.grid == 9 and u.spline_weight.shape[-1] == 9 + u.order for u in units)
    assert close(hook.end[2], hook.start[2], 5e-2)  # least-squares refit onto the finer grid
    assert trainer.state.epoch == 4 and trainer.state.best_epoch > 2
    losses = [c["train_loss"] for c in trainer.state.curves]
    assert losses[3] < losses[1]


def test_grid_update_before_training_moves_the_knots_to_the_inputs(tiny_spec):
    trainer, _ = run_with_hook(tiny_spec, grid_update_epochs=[0], epochs=1)
    x = trainer.data.train.x  # standardised iris: beyond the initial grid [-1, 1]
    lift = trainer.model.backbone.lift
    assert isinstance(lift, KANUnit)
    assert (lift.knots[:, lift.order] < x.min(0).values).all()
    assert (lift.knots[:, lift.order + lift.grid] > x.max(0).values).all()


def test_a_finished_run_loads_at_its_extended_grid(tiny_spec, tmp_path: Path):
    spec = tiny_spec(model=KAN, train={"epochs": 3, "grid_extend": [[1, 6], [2, 8]],
                                       "patience": None})
    result = mlplab.train(spec, out=tmp_path / "run")
    assert result.spec.train.grid_extend == {1: 6, 2: 8}
    check_run(tmp_path / "run")
    loaded = mlplab.load_run(tmp_path / "run")
    assert {u.grid for u in grid_units(loaded.model)} == {result.model.backbone.lift.grid}
    x = torch.randn(7, 4)
    assert torch.equal(result.model.eval()(x, None), loaded.model(x, None))
    assert result.counts["trainable_params"] == sum(p.numel() for p in loaded.model.parameters())


def test_best_weights_from_before_an_extension_load_at_their_grid():
    coarse = KANUnit(3, 2, grid=4)
    fine = KANUnit(3, 2, grid=4)
    fine.extend_grid(9)
    ckpt.load_state(coarse, fine.state_dict())  # a fresh unit takes the saved grid ...
    assert coarse.grid == 9 and torch.equal(coarse.knots, fine.knots)
    ckpt.load_state(fine, KANUnit(3, 2, grid=4).state_dict())  # ... and back
    assert fine.grid == 4 and fine.spline_weight.shape == (2, 3, 7)


@pytest.mark.parametrize("optimizer,crash", [("adamw", 2), ("adamw", 3), ("lbfgs", 3)])
def test_resume_across_an_extension_is_bitwise(tiny_spec, tmp_path: Path, optimizer, crash):
    # the extension runs after 2 epochs: a crash after epoch 2 resumes at the coarse grid and
    # extends, a crash after epoch 3 resumes at the fine grid
    train = {"epochs": 5, "grid_extend": {2: 7}, "grid_update_epochs": [1], "monitor": "loss",
             "optimizer": optimizer, "lbfgs_max_iter": 4}
    spec = tiny_spec(data={"source": "sklearn:wine"}, model={**KAN, "dropout": 0.1}, train=train)
    reference = mlplab.train(spec, out=tmp_path / "ref")

    class Crash(Exception):
        pass

    with crash_after_checkpoint(crash, Crash), pytest.raises(Crash):
        mlplab.train(spec, out=tmp_path / "run")
    check_run(tmp_path / "run")  # `mlplab info` reads a checkpoint at either grid
    torch.manual_seed(999)
    resumed = mlplab.resume(tmp_path / "run")
    assert resumed.metrics == reference.metrics
    assert resumed.best_epoch == reference.best_epoch
    for name, value in reference.model.state_dict().items():
        assert value.equal(resumed.model.state_dict()[name]), name


@pytest.mark.parametrize("model,train,field,match", [
    ({}, {"grid_extend": {2: 8}}, "train.grid_extend", "needs a unit with a spline grid"),
    ({"unit": "fan"}, {"grid_update_epochs": [1]}, "train.grid_update_epochs", "'kan' or 'rbf'"),
    ({"unit": "rbf"}, {"grid_extend": {1: 8}}, "train.grid_extend", "spline grid .*'kan'\\)"),
    (KAN, {"grid_extend": {4: 8}}, "train.grid_extend", "epoch 4 is outside the run"),
    (KAN, {"grid_extend": {-1: 8}}, "train.grid_extend", "outside the run"),
    (KAN, {"grid_update_epochs": [1, 9]}, "train.grid_update_epochs", "epoch 9"),
    (KAN, {"grid_update_epochs": [1, 1]}, "train.grid_update_epochs", "twice"),
    (KAN, {"grid_extend": {1: 10, 2: 8}}, "train.grid_extend", "increase with the epoch"),
    (KAN, {"grid_extend": [[1, 8], [1, 10]]}, "train.grid_extend", "twice"),
    (KAN, {"grid_extend": {1: 4}}, "train.grid_extend", "finer than the model's"),
    (KAN, {"grid_extend": [[1, 8, 2]]}, "train.grid_extend", "pairs"),
])
def test_bad_schedules_are_spec_errors_naming_the_field(tiny_spec, model, train, field, match):
    with pytest.raises(SpecError, match=match) as err:
        parse_spec(tiny_spec(model=model, train=train))
    assert field in str(err.value)


def test_toml_string_keys_are_epochs(tiny_spec):
    spec = parse_spec(tiny_spec(model=KAN, train={"grid_extend": {"3": 12, "1": 6}}))
    assert spec.train.grid_extend == {1: 6, 3: 12}
    assert list(spec.train.grid_extend) == [1, 3]


# -- RBF centres through the same schedule ---------------------------------------------------


def smooth_rbf(**options) -> RBFUnit:
    """An RBF unit whose Gaussian weights vary smoothly along the centres."""
    torch.manual_seed(0)
    unit = RBFUnit(2, 3, **options)
    with torch.no_grad():
        ramp = torch.linspace(-2, 2, unit.n_centers)
        weight = torch.sin(ramp).view(1, 1, -1) * torch.tensor([1.0, -0.5, 2.0]).view(3, 1, 1)
        unit.rbf_weight.copy_(weight.expand(3, 2, -1).reshape(3, -1))
    return unit


@pytest.mark.parametrize("grid_eps", [1.0, 0.5])
def test_rbf_update_grid_moves_centres_to_the_data_and_keeps_the_function(grid_eps):
    unit = smooth_rbf(grid_eps=grid_eps)
    torch.manual_seed(1)
    x = torch.stack([(torch.randn(2000) * 0.3).clamp(-1, 1), torch.rand(2000) * 3 - 1.5], 1)
    before = unit(x)
    unit.update_grid(x)
    after = unit(x)
    assert unit.centers.shape == (2, 8) and unit.widths is not None
    assert unit.widths.shape == (2, 1)
    assert torch.allclose(unit.centers[:, 0], x.min(0).values, atol=0.04)
    assert torch.allclose(unit.centers[:, -1], x.max(0).values, atol=0.04)
    # the width keeps its ratio to the spacing: narrower where the data are narrower
    assert unit.widths[0, 0] < unit.widths[1, 0] < unit.width
    # Gaussians on the new centres only approximate the old ones: 1.3% (eps 1), 1.7% (eps 0.5)
    scale = before.pow(2).mean().sqrt()
    rms = (after - before).pow(2).mean().sqrt() / scale
    assert rms < 3e-2 and (after - before).abs().max() < 0.1 * before.abs().max()
    unrefitted = smooth_rbf(grid_eps=grid_eps)
    unrefitted.update_grid(x)
    with torch.no_grad():
        unrefitted.rbf_weight.copy_(smooth_rbf().rbf_weight)  # new centres, old weights
    assert (unrefitted(x) - before).pow(2).mean().sqrt() > 5 * rms * scale


def test_rbf_updated_centres_save_load_and_train():
    unit = smooth_rbf(learnable_centers=True, base="none")
    unit.update_grid(torch.randn(500, 2) * 0.5)
    assert isinstance(unit.centers, torch.nn.Parameter) and unit.centers.shape == (2, 8)
    fresh = RBFUnit(2, 3, learnable_centers=True, base="none")
    ckpt.load_state(fresh, unit.state_dict())  # a unit built from the spec takes the layout
    x = torch.randn(9, 2)
    assert torch.equal(fresh(x), unit(x))
    ckpt.load_state(fresh, RBFUnit(2, 3, learnable_centers=True, base="none").state_dict())
    assert fresh.centers.shape == (8,) and fresh.widths is None  # ... and back
    double = unit.double()
    inputs = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    params = dict(double.named_parameters())
    assert torch.autograd.gradcheck(
        lambda x, c, w: functional_call(double, {**params, "centers": c, "rbf_weight": w}, (x,)),
        (inputs, params["centers"], params["rbf_weight"]))


def test_rbf_grid_update_in_a_run_moves_the_centres_to_the_inputs(tiny_spec):
    from mlplab.run import prepare_run

    spec = parse_spec(tiny_spec(model={"unit": "rbf", "width": 8, "depth": 1},
                                train={"epochs": 2, "grid_update_epochs": [0, 1]}))
    data, task, model, _ = prepare_run(spec)
    hook = Outputs()
    trainer = Trainer(model, task, data, spec.train, seed=spec.seed, quiet=True, hooks=[hook])
    trainer.fit()
    units = list(grid_units(trainer.model))
    assert len(units) == 3 and all(u.centers.shape == (u.d_in, u.n_centers) for u in units)
    lift, x = trainer.model.backbone.lift, trainer.data.train.x  # standardised iris
    assert lift is units[0]
    assert (lift.centers[:, 0] < x.min(0).values).all()
    assert (lift.centers[:, -1] > x.max(0).values).all()
    assert close(hook.end[1], hook.start[1], 5e-2)  # the update after epoch 1 kept the function
    assert hook.optimizers[1] is not hook.optimizers[-1]
