"""`tabm`: TabM, and MLPs with numeric embeddings (PLR, PLE), against the plain MLP.

Gorishniy et al. (TabM, 2024): one model imitating an ensemble of k MLPs through
BatchEnsemble weights beats the plain MLP; Gorishniy et al. (2022): periodic (PLR) and
piecewise-linear (PLE) embeddings of the numeric features improve MLPs. Protocol: per table
one sweep with four named families at the same training budget (same width, depth, epochs,
optimiser; the TabM paper's settings: plain ReLU blocks without norm, dropout 0.1, AdamW lr
2e-3, weight decay 3e-4, batch 256, one-hot categoricals), several seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlplab.errors import SpecError
from mlplab.repro import register
from mlplab.repro.base import Claim, Part, Reproduction
from mlplab.repro.tables import TABLES, table_sections

PAPER_TABM = ("California housing RMSE: MLP 0.495, TabM 0.441 (TabM+PLE 0.429); Adult "
              "accuracy: MLP 0.854, TabM 0.858")
PAPER_EMB = "MLP-PLR / MLP-PLE ahead of the plain MLP on most of the paper's datasets"


@dataclass(frozen=True)
class TabMProtocol:
    """What `mlplab repro tabm` runs; `tag` suffixes the part (sweep) names."""

    tables: tuple[str, ...] = ("diamonds", "cps1988", "churn", "hpc")
    seeds: tuple[int, ...] = (0, 1, 2)
    max_rows: int | None = 4000
    width: int = 128
    depth: int = 3
    k: int = 32
    epochs: int = 40
    patience: int = 10
    tag: str = ""


DEFAULT = TabMProtocol()
FULL = TabMProtocol(tables=("diamonds", "cps1988", "churn", "hpc", "ames", "credit"),
                    seeds=(0, 1, 2, 3, 4), max_rows=8000, width=192, epochs=60, patience=16,
                    tag="full")


def families(p: TabMProtocol) -> dict[str, dict[str, Any]]:
    return {"mlp": {}, "tabm": {"model.ensemble": "tabm", "model.k": p.k},
            "mlp-plr": {"model.num_embeddings": "plr"},
            "mlp-ple": {"model.num_embeddings": "ple"}}


def build(p: TabMProtocol) -> list[Part]:
    parts = []
    for table in p.tables:
        if table not in TABLES:
            raise SpecError(f"protocol.tables: unknown table {table!r}; choose from "
                            + ", ".join(TABLES))
        name = f"tabm-{table}" + (f"-{p.tag}" if p.tag else "")
        sweep = {
            "name": name, "seeds": list(p.seeds), **table_sections(table, p.max_rows),
            "model": {"block": "plain", "norm": "none", "activation": "relu", "dropout": 0.1,
                      "width": p.width, "depth": p.depth, "cat_encoding": "onehot"},
            "train": {"lr": 2e-3, "weight_decay": 3e-4, "batch_size": 256, "epochs": p.epochs,
                      "patience": p.patience},
            "family": families(p),
        }
        parts.append(Part(name, table, sweep, {"domain": "tabular", "match": "none"}))
    return parts


def claims(p: TabMProtocol) -> list[Claim]:
    return [Claim("TabM beats the plain MLP", "tabm", "mlp", paper=PAPER_TABM),
            Claim("MLP+PLR beats the plain MLP", "mlp-plr", "mlp", paper=PAPER_EMB),
            Claim("MLP+PLE beats the plain MLP", "mlp-ple", "mlp", paper=PAPER_EMB)]


REPRO = register(Reproduction(
    name="tabm",
    paper="TabM: Advancing Tabular Deep Learning with Parameter-Efficient Ensembling "
          "(Gorishniy et al., 2024); On Embeddings for Numerical Features (Gorishniy et al., "
          "2022)",
    claim="At the same training budget, TabM beats the plain MLP, and so do MLPs with PLR or "
          "PLE numeric embeddings.",
    figures=("TabM paper, mean test scores over 15 seeds: California housing RMSE MLP 0.495, "
             "TabM 0.441, TabM+PLE 0.429; Adult accuracy MLP 0.854, TabM 0.858; Higgs-small "
             "accuracy MLP 0.718, TabM 0.739.",
             "Numeric-embeddings paper: MLP-PLR and MLP-PLE improve on the plain MLP on most "
             "of its datasets (the TabM paper's MLP+embeddings rows agree)."),
    minutes=5.0, full_minutes=45.0,
    protocols={"default": DEFAULT, "full": FULL}, build=build, claims=claims))
