"""mlplab's TSMixer against neuralforecast's TSMixer on the same windows, plus baselines.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/forecast.py [--seeds 0 1 2] \
        [--steps 1000] [--threads 1] [--series elecdemand eustock sunspots gasoline]

One process, one thread each, both libraries interleaved per seed so background load hits
them alike. Each series is split in time order: the last `test` steps are the test part
(rolling origins `h` apart, non-overlapping forecasts), the `val` steps before them the
validation part, the rest training windows (stride 1). Both models get the same lookback
`input_size`, horizon `h`, architecture (2 mixing layers, ff_dim 64, dropout 0.1, RevIN),
loss (MAE), batch (32 windows), learning rate (1e-3) and at most the same number of gradient
steps (`--steps`; mlplab trains whole epochs, as many as fit in `--steps`).
neuralforecast runs `NeuralForecast.cross_validation(test_size, step_size=h, val_size,
refit=False)`, its own rolling-origin protocol on the same cutoffs, and keeps its last step
(constant learning rate). mlplab uses its own recipe, `MLPForecaster`'s defaults: a cosine
schedule after a 5% warmup, validation forecasts from every origin of the validation part
(`WindowConfig.val_step = 1`), early stopping after 5 epochs without a better validation loss
(`patience`, as `MLPForecaster`) and the best-validation epoch restored (its trainer always
does). Nothing is chosen on the test windows.
"Fit s" is the process CPU time (one thread, so it is the work done, whatever else runs on the
machine) of data preparation + training + test forecasts for both; the wall-clock ratio is
printed too (on a shared machine it also measures the scheduler).
Seasonal naive and ETS (statsmodels, fitted on the training part) forecast the same windows.
Ray is never initialised (asserted at the end).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import numpy as np
import pandas as pd
import torch

from mlplab.forecast import evaluate as ev
from mlplab.forecast.data import panel_from_frame
from mlplab.forecast.prepare import Prepared, WindowConfig, default_sizes
from mlplab.forecast.sources import SERIES, load_series
from mlplab.repro.tsmixer import CASES as REPRO_CASES
from mlplab.repro.tsmixer import train_tsmixer

CASES = {name: REPRO_CASES[name] for name in ("elecdemand", "eustock", "sunspots", "gasoline")}
BATCH, LR, FF_DIM, BLOCKS, DROPOUT = 32, 1e-3, 64, 2, 0.1  # the reference's settings


def case_frame(name: str) -> tuple[pd.DataFrame, str]:
    source = CASES[name][0]
    df, info = load_series(source)
    df = df[["unique_id", "ds", "y"]]  # neuralforecast's TSMixer takes no exogenous columns
    return df, info.channels if info is not None else "independent"


def run_mlplab(df: pd.DataFrame, channels: str, name: str, seed: int, steps: int,
               ) -> tuple[float, tuple[float, float], int]:
    _, L, h, season = CASES[name]
    t0, c0 = time.perf_counter(), time.process_time()
    panel = panel_from_frame(df, channels=channels)
    val, test = default_sizes(len(panel.series[0]), h)
    prep = Prepared(panel, WindowConfig(L, h, val_size=val, test_size=test))
    # mlplab's recipe (the repro's): whole epochs within `steps`, cosine after a 5% warmup, no
    # clipping, early stopping on the validation loss with MLPForecaster's patience
    model, state = train_tsmixer(prep, seed, steps)
    windows = prep.windows("test")
    forecast = ev.forecasts(model, prep, windows)
    seconds = (time.perf_counter() - t0, time.process_time() - c0)
    mae = ev.score(prep, windows, forecast, season)[0]["mae"]
    return mae, seconds, state.step


def run_neuralforecast(df: pd.DataFrame, name: str, seed: int, steps: int,
                       ) -> tuple[float, tuple[float, float], pd.DataFrame]:
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MAE
    from neuralforecast.models import TSMixer as NFTSMixer

    _, L, h, _ = CASES[name]
    n_series = df["unique_id"].nunique()
    val, test = default_sizes(len(df) // n_series, h)
    t0, c0 = time.perf_counter(), time.process_time()
    model = NFTSMixer(h=h, input_size=L, n_series=n_series, n_block=BLOCKS, ff_dim=FF_DIM,
                      dropout=DROPOUT, revin=True, loss=MAE(), max_steps=steps,
                      learning_rate=LR, batch_size=BATCH, windows_batch_size=BATCH,
                      val_check_steps=steps, early_stop_patience_steps=-1,
                      scaler_type="identity", random_seed=seed, accelerator="cpu", devices=1,
                      enable_progress_bar=False, logger=False, enable_checkpointing=False,
                      enable_model_summary=False)
    freq = 1 if pd.api.types.is_integer_dtype(df["ds"]) else pd.infer_freq(
        pd.DatetimeIndex(df["ds"].iloc[:10]))
    nf = NeuralForecast(models=[model], freq=freq)
    cv = nf.cross_validation(df=df, n_windows=None, test_size=test, step_size=h,
                             val_size=val, refit=False)
    seconds = (time.perf_counter() - t0, time.process_time() - c0)
    return float(np.mean(np.abs(cv["y"] - cv["TSMixer"]))), seconds, cv


def baselines(df: pd.DataFrame, channels: str, name: str) -> dict[str, float]:
    _, L, h, season = CASES[name]
    panel = panel_from_frame(df, channels=channels)
    val, test = default_sizes(len(panel.series[0]), h)
    prep = Prepared(panel, WindowConfig(L, h, val_size=val, test_size=test))
    windows = prep.windows("test")
    out = {}
    for kind in ("seasonal_naive", "ets"):
        out[kind] = ev.score(prep, windows, ev.baseline(prep, windows, kind, season),
                             season)[0]["mae"]
    out["windows"] = len(windows)
    out["length"] = len(panel.series[0])
    return out


def markdown(table: pd.DataFrame) -> str:
    cols = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--series", nargs="+", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    for logger in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    rows = []
    for name in args.series:
        df, channels = case_frame(name)
        base = baselines(df, channels, name)
        ours, theirs, our_s, their_s = [], [], [], []
        for seed in args.seeds:
            mae_nf, sec_nf, _ = run_neuralforecast(df, name, seed, args.steps)
            mae, sec, steps = run_mlplab(df, channels, name, seed, args.steps)
            ours.append(mae)
            theirs.append(mae_nf)
            our_s.append(sec)
            their_s.append(sec_nf)
            print(f"{name} seed {seed}: mlplab MAE {mae:.4g} in {sec[0]:.1f}s wall / "
                  f"{sec[1]:.1f}s CPU ({steps} steps), neuralforecast MAE {mae_nf:.4g} in "
                  f"{sec_nf[0]:.1f}s wall / {sec_nf[1]:.1f}s CPU ({args.steps} steps)",
                  flush=True)
        rows.append({
            "series": name, "length": base["length"], "test windows": base["windows"],
            "mlplab MAE": f"{statistics.mean(ours):.4g} ± {statistics.pstdev(ours):.2g}",
            "neuralforecast MAE": f"{statistics.mean(theirs):.4g} ± "
                                  f"{statistics.pstdev(theirs):.2g}",
            "seasonal naive": f"{base['seasonal_naive']:.4g}", "ETS": f"{base['ets']:.4g}",
            "mlplab fit s (CPU)": f"{statistics.mean(s[1] for s in our_s):.1f}",
            "neuralforecast fit s (CPU)": f"{statistics.mean(s[1] for s in their_s):.1f}",
            "speed-up CPU": f"{sum(s[1] for s in their_s) / sum(s[1] for s in our_s):.1f}x",
            "speed-up wall": f"{sum(s[0] for s in their_s) / sum(s[0] for s in our_s):.1f}x",
            "MAE ok": "yes" if statistics.mean(ours) <= statistics.mean(theirs) else "no",
        })
    try:
        import ray

        assert not ray.is_initialized(), "ray was initialised"
    except ImportError:
        pass
    table = pd.DataFrame(rows)
    print()
    print(f"seeds {args.seeds}, ~{args.steps} steps, {args.threads} thread(s), torch "
          f"{torch.__version__}")
    print(markdown(table))
    assert set(CASES) >= set(args.series) and all(CASES[n][0] in SERIES for n in CASES)


if __name__ == "__main__":
    main()
