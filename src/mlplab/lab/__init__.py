"""The lab: budget-matched sweeps of MLP families, a run store, Pareto frontiers, scaling fits."""

from mlplab.lab.spec import SweepSpec, load_sweep, parse_sweep
from mlplab.lab.store import Store
from mlplab.lab.sweep import SweepResult, sweep

__all__ = ["SweepSpec", "load_sweep", "parse_sweep", "Store", "SweepResult", "sweep"]
