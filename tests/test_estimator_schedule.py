"""Estimators take the trainer's optimizer and grid schedule: `optimizer="lbfgs"`,
`grid_update_epochs`, `grid_extend` (KAN knots, RBF centres), as plain keyword arguments."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

import mlplab
from mlplab.errors import SpecError
from mlplab.train.hooks import grid_units

KAN = dict(unit="kan", unit_options={"grid": 3}, d_block=4, n_blocks=1, dropout=0.0,
           patience=None, random_state=0, threads=1)


def formula(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (n, 2))
    return X, np.exp(np.sin(np.pi * X[:, 0]) + X[:, 1] ** 2)


def test_lbfgs_with_a_grid_schedule_fits_saves_and_loads(tmp_path):
    X, y = formula(600)
    est = mlplab.MLPRegressor(optimizer="lbfgs", max_epochs=6, grid_update_epochs=[0],
                              grid_extend=[[1, 6]], **KAN)
    spec = est._train_spec()
    assert spec.optimizer == "lbfgs" and spec.lr == 1.0 and spec.weight_decay == 0.0
    assert spec.grid_extend == {1: 6} and spec.grid_update_epochs == [0]
    est.fit(X, y)
    units = list(grid_units(est.model_))
    assert units and all(u.grid == 6 for u in units)  # the best epoch (3) came after it
    assert len(est.curves_) == 6
    assert np.sqrt(np.mean((est.predict(X) - y) ** 2)) < 0.5 * y.std()
    est.save(tmp_path / "est")
    loaded = mlplab.load(tmp_path / "est")  # built at grid 3, takes the saved grid 6
    assert {u.grid for u in grid_units(loaded.model_)} == {6}
    assert np.array_equal(loaded.predict(X), est.predict(X))


def test_new_parameters_survive_clone_and_get_params():
    est = mlplab.MLPRegressor(unit="rbf", optimizer="lbfgs", grid_update_epochs=[0, 5],
                              grid_extend=None, lr=0.5)
    params = clone(est).get_params()
    assert params["optimizer"] == "lbfgs" and params["grid_update_epochs"] == [0, 5]
    assert params["grid_extend"] is None
    assert est._train_spec().lr == 0.5  # an explicit lr is kept for L-BFGS
    tabm = mlplab.TabMClassifier(optimizer="sgd")
    assert clone(tabm).get_params()["optimizer"] == "sgd"
    assert mlplab.MLPClassifier().get_params()["optimizer"] == "adamw"


def test_rbf_centres_move_in_an_estimator():
    X, y = formula()
    est = mlplab.MLPRegressor(unit="rbf", d_block=4, n_blocks=1, max_epochs=2,
                              grid_update_epochs=[0], random_state=0, threads=1).fit(X, y)
    units = list(grid_units(est.model_))
    assert units and all(u.centers.shape == (u.d_in, u.n_centers) for u in units)


@pytest.mark.parametrize("kwargs,match", [
    (dict(grid_update_epochs=[1]), r"grid_update_epochs needs a unit with a grid \(unit = "),
    (dict(unit="rbf", grid_extend={1: 9}), "grid_extend needs a unit with a spline grid"),
    (dict(unit="kan", grid_extend={1: 4}), r"finer than the model's \(unit_options.grid = 5\)"),
    (dict(unit="kan", max_epochs=5, grid_extend={7: 9}), r"epoch 7 .* \(max_epochs - 1\)"),
    (dict(optimizer="adam"), "optimizer"),
])
def test_bad_schedules_and_optimizers_are_spec_errors_naming_the_parameter(kwargs, match):
    X, y = formula(40)
    with pytest.raises(SpecError, match=match):
        mlplab.MLPRegressor(threads=1, **kwargs).fit(X, y)
