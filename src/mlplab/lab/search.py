"""Optuna glue: one TPE study per family x budget, stored in the sweep's own database.

Trials are driven with Optuna's ask-and-tell interface, so the lab's own claim/lease
machinery decides *who* runs a search trial and Optuna only decides *what* it tries.
"""

from __future__ import annotations

import hashlib
import time
from functools import lru_cache
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from mlplab.lab.spec import SearchParam, SearchSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)


def study_name(sweep: str, family: str, budget: float | None) -> str:
    return f"{sweep}/{family}/{'-' if budget is None else f'{budget:g}'}"


def distribution(param: SearchParam) -> BaseDistribution:
    if param.choices is not None:
        return CategoricalDistribution(param.choices)
    assert param.low is not None and param.high is not None
    if param.int:
        return IntDistribution(int(param.low), int(param.high), log=param.log)
    return FloatDistribution(param.low, param.high, log=param.log)


@lru_cache(maxsize=4)
def storage(url: str) -> optuna.storages.RDBStorage:
    """One Optuna storage per process and database URL (the lab's SQLAlchemy URL)."""
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {
        "pool_pre_ping": True}
    for attempt in range(3):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except Exception:  # another machine is creating Optuna's tables right now
            if attempt == 2:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def create_study(url: str, name: str, direction: str) -> None:
    """Create the study if it does not exist (safe when several machines plan at once)."""
    for _ in range(3):
        try:
            optuna.create_study(storage=storage(url), study_name=name, direction=direction,
                                load_if_exists=True)
            return
        except optuna.exceptions.DuplicatedStudyError:
            continue


def _sampler(spec: SearchSpec, seed_text: str) -> optuna.samplers.TPESampler:
    seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:4], "little")
    startup = spec.startup_trials or max(2, spec.n_trials // 3)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)


def ask(url: str, name: str, spec: SearchSpec, seed_text: str) -> tuple[int, dict[str, Any]]:
    """Ask the study for a new trial: `(optuna trial number, {dotted field: value})`."""
    study = optuna.load_study(study_name=name, storage=storage(url),
                              sampler=_sampler(spec, seed_text))
    trial = study.ask({k: distribution(p) for k, p in spec.space.items()})
    return trial.number, dict(trial.params)


def tell(url: str, name: str, number: int, value: float | None) -> None:
    """Report a finished search trial (`None`: it failed)."""
    study = optuna.load_study(study_name=name, storage=storage(url))
    if value is None or value != value:
        study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
    else:
        study.tell(number, value, skip_if_finished=True)


def best_params(url: str, name: str) -> dict[str, Any] | None:
    """The best completed trial's values, or None when no search trial completed."""
    study = optuna.load_study(study_name=name, storage=storage(url))
    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return None
    return dict(study.best_trial.params)
