"""Markdown for the `## Training throughput` section of BENCHMARKS.md, and replacing it in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SECTION = "## Training throughput"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _rate(rows: list[dict], width: int, batch: int, name: str, key: str) -> float | None:
    for r in rows:
        if (r["width"], r["batch"], r["contender"]) == (width, batch, name):
            return r[key]
    return None


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "—"


def throughput_table(rows: list[dict], peak_fp32: float, key: str = "samples_per_s",
                     peak_bf16: float | None = None) -> str:
    """One line per (width, batch); `key` = "samples_per_s" (wall) or "samples_per_cpu_s".
    With `peak_bf16` (the same run's bf16 matmul peak), a "bf16 ÷ bf16 peak" column."""
    names = ["mlplab fp32", "mlplab bf16", "torch loop", "sklearn", "skorch"]
    keys = sorted({(r["width"], r["batch"]) for r in rows})
    body = []
    unit = "samples/s" if key == "samples_per_s" else "samples/CPU-s"
    for w, b in keys:
        rates = {n: _rate(rows, w, b, n, key) for n in names}
        fps = next(r["gflops"] / r["samples_per_s"] for r in rows
                   if (r["width"], r["batch"], r["contender"]) == (w, b, "mlplab fp32"))
        gf = fps * (rates["mlplab fp32"] or 0.0)
        body.append([w, b] + [f"{rates[n]:,.0f}" if rates[n] else "—" for n in names]
                    + [f"{gf:.0f}", f"{gf / peak_fp32:.0%}",
                       ratio(rates["mlplab bf16"], rates["mlplab fp32"]),
                       ratio(rates["mlplab fp32"], rates["torch loop"]),
                       ratio(rates["mlplab fp32"], rates["sklearn"]),
                       ratio(rates["mlplab fp32"], rates["skorch"])])
        if peak_bf16:
            body[-1].append(f"{fps * rates['mlplab bf16'] / peak_bf16:.0%}"
                            if rates["mlplab bf16"] else "—")
    header = ["width", "batch"] + [f"{n} ({unit})" for n in names] + [
        "mlplab fp32 GFLOP/" + unit.split("/")[1], "÷ fp32 peak", "bf16 ÷ fp32", "÷ torch loop", "÷ sklearn",
        "÷ skorch"] + (["bf16 ÷ bf16 peak"] if peak_bf16 else [])
    return _table(header, body)


def render(results: dict[str, Any]) -> str:
    """The whole section as markdown."""
    env, peaks = results["env"], results["peaks"]
    peak_fp32, peak_cpu = results["peak_fp32"], results["peak_fp32_cpu"]
    parts = [SECTION, "",
             f"Command: `{env['command']}` — {env['date']}, torch {env['torch']}, "
             f"{env['threads']} threads, {env['cpu']}.",
             f"Machine load (1-min average) before / after: {env['load_before']:.2f} / "
             f"{env['load_after']:.2f} on {env['cores']} cores (the figure after includes this "
             "benchmark's own threads)"
             + (" — **the machine was shared with other jobs while this ran; absolute numbers "
                "are noisy, ratios within a row were measured back to back.**"
                if env["load_before"] > 0.5 else "; the machine was otherwise idle."),
             f"Total benchmark time: {env['seconds']:.0f} s.", "",
             "### Matmul peak (2048 x 2048 x 2048)", "",
             "Measured at the start and at the end of the run; the better of the two counts.",
             "",
             _table(["route", "GFLOP/s", "GFLOP/CPU-s", "rel. error vs float64",
                     "fp32-accurate"],
                    [[p["route"], f"{p['gflops']:.0f}", f"{p['gflops_per_cpu_s']:.0f}",
                      f"{p['rel_error']:.1e}" if p["rel_error"] is not None else "—",
                      "yes" if p["fp32_accurate"] else "no"] for p in peaks]),
             "",
             f"The fp32 peak used below is the best fp32-accurate route: **{peak_fp32:.0f} "
             f"GFLOP/s** ({peak_cpu:.0f} GFLOP per CPU-second). mlplab's trainer uses "
             "PyTorch's default route; the oneDNN route is opt-in (`train.fp32_matmul = "
             "\"fast\"`, checked to be exact on the CPU at hand).", "",
             "### Training samples/s (residual MLP, depth 4, ratio 4, 128 inputs, 10 classes)",
             "",
             "Each contender warms up, then they take turns at timed epochs; each one's "
             "fastest epoch counts. `torch loop` = `DataLoader(TensorDataset, "
             "shuffle=True)` + default `AdamW` on the same module; `sklearn` = `MLPClassifier` "
             "with the same matmul shapes (hidden sizes w, 4w, w, …; no skips/norms; float32); "
             "`skorch` = `NeuralNetClassifier` on the same module. GFLOP/s = forward FLOPs "
             "from `mlplab.count` x 3.", "",
             throughput_table(results["training"], peak_fp32,
                              peak_bf16=results.get("peak_bf16")), "",
             "The same runs measured in process CPU time (samples per CPU-second; what other "
             "jobs on a shared machine distort least — with idle cores, wall time is the "
             "figure that counts):", "",
             throughput_table(results["training"], peak_cpu, key="samples_per_cpu_s",
                              peak_bf16=results.get("peak_bf16_cpu")), ""]
    cuda = [r for r in results["training"] if r["contender"].endswith(" cuda")]
    if cuda:  # the trainer on the GPU (`train.device = "cuda"`), against that GPU's peaks
        gpu_peak = {p["dtype"]: p["gflops"] for p in results["peaks"]
                    if p.get("device") == "cuda:0" and p["precision"] == "highest"}

        def share(r: dict) -> str:
            peak = gpu_peak.get("bfloat16" if "bf16" in r["contender"] else "float32")
            return f"{r['gflops'] / peak:.0%}" if peak else "—"

        parts += ["### On CUDA (cuda:0)", "", _table(
            ["width", "batch", "contender", "samples/s", "GFLOP/s", "÷ same-dtype peak"],
            [[r["width"], r["batch"], r["contender"], f"{r['samples_per_s']:,.0f}",
              f"{r['gflops']:.0f}", share(r)] for r in cuda]), ""]
    if results.get("ablation"):
        ref = results["ablation"][0]
        parts += ["### What each trainer change buys (same model and data)", "",
                  _table(["variant", "samples/s", "GFLOP/s", "vs reference", "samples/CPU-s",
                          "vs reference (CPU)"],
                         [[a["variant"], f"{a['samples_per_s']:,.0f}", f"{a['gflops']:.0f}",
                           f"{a['samples_per_s'] / ref['samples_per_s']:.2f}x",
                           f"{a['samples_per_cpu_s']:,.0f}",
                           f"{a['samples_per_cpu_s'] / ref['samples_per_cpu_s']:.2f}x"]
                          for a in results["ablation"]]), ""]
    if results.get("profile"):
        for title, prof in results["profile"].items():
            parts += [f"### Profile: {title}", "",
                      _table(["category", "ms / step", "share"],
                             [[p["category"], f"{p['ms_per_step']:.1f}", f"{p['share']:.0%}"]
                              for p in prof]), ""]
    if results.get("accuracy"):
        parts += ["### bf16 accuracy (digits, `mlplab.train`, same spec, mean over seeds)", "",
                  _table(["precision", "test accuracy % (mean)", "min", "max", "train s"],
                         [[a["precision"], f"{a['mean']:.2f}", f"{a['min']:.2f}",
                           f"{a['max']:.2f}", f"{a['train_seconds']:.2f}"]
                          for a in results["accuracy"]]), ""]
    if results.get("inference"):
        parts += ["### Inference (eval-mode forward of the same module)", "",
                  "`mlplab predict` = `mlplab.predict(model, x)` (inference mode, eval mode); `bare inference_mode` = `with torch.inference_mode(): "
                  "model(x)`; `onnxruntime` = the module exported with `torch.onnx.export` "
                  "(dynamo) run by an onnxruntime CPU session with the same thread count and no "
                  "busy-waiting (like torch under OMP_WAIT_POLICY=PASSIVE). "
                  "Median over 7 interleaved rounds.", "",
                  _table(["width", "batch", "path", "latency µs", "rows/s"],
                         [[r["width"], r["batch"], r["path"], f"{r['latency_us']:,.0f}",
                           f"{r['rows_per_s']:,.0f}"] for r in results["inference"]]), ""]
    if results.get("overhead"):
        parts += ["### Estimator overhead (`mlplab.MLPClassifier.fit` vs a raw PyTorch loop, "
                  "same epochs)", "",
                  _table(["data", "rows", "epochs", "estimator s", "raw loop s", "ratio"],
                         [[r["data"], r["rows"], r["epochs"], f"{r['estimator_s']:.3f}",
                           f"{r['raw_loop_s']:.3f}", f"{r['ratio']:.2f}x"]
                          for r in results["overhead"]]), ""]
    if results.get("notes"):
        parts += ["### Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    return "\n".join(parts)


def write_section(path: str | Path, text: str) -> None:
    """Replace the `## Training throughput` section of `path` (or append it)."""
    path = Path(path)
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    lines = old.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        rest = [""] + lines[end:] if end < len(lines) else []
        new = "\n".join(lines[:start] + text.rstrip("\n").splitlines() + rest) + "\n"
    from mlplab.train.checkpoint import atomic_write_bytes

    atomic_write_bytes(path, new.encode())
