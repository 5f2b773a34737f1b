"""`mlplab fit-image SOURCE`: fit one image (or 1-D signal) with an encoding's preset.

The run goes through `mlplab.train` (one trainer, checkpoints, `--resume`, `mlplab info`) and
leaves `reconstruction.png`, `error_map.png`, `psnr_curve.png` and `fields.json` in the run
directory. Only argparse is imported at module level (the CLI builds its parser fast).
"""

from __future__ import annotations

import argparse
from typing import Any

ENCODING_CHOICES = ("hashgrid", "fourier", "posenc", "siren", "dense", "rbf", "none")
ALIASES = {"dense": "densegrid", "rbf": "rbfgrid"}


def fit_image(source: str, *, encoding: str = "hashgrid", scale: str | float | None = None,
              size: int | None = 256, split: str = "all", epochs: int | None = None,
              seed: int = 0, out: str | None = None, quiet: bool = True,
              threads: int | None = None, precision: str = "fp32",
              output_tv: float = 0.0, native: bool = False) -> tuple[Any, dict]:
    """Train `encoding`'s preset on `source` (`output_tv`: `task.options.output_tv`, the
    output's total variation as a penalty; `native`: a grid's fused C++ lookup); returns
    `(RunResult, fields.json summary)`."""
    import json
    from pathlib import Path

    from mlplab.fields.presets import field_run_spec
    from mlplab.run import default_run_dir, train
    from mlplab.spec import parse_spec

    encoding = ALIASES.get(encoding, encoding)
    raw = field_run_spec(source, encoding, size=size, split=split, scale=scale, epochs=epochs,
                         seed=seed, threads=threads, precision=precision, native=native)
    if output_tv:
        raw["task"]["options"]["output_tv"] = output_tv
    spec = parse_spec(raw)
    run_dir = Path(out) if out else default_run_dir(spec)
    result = train(spec, out=run_dir, quiet=quiet)
    return result, json.loads((run_dir / "fields.json").read_text())


def _scale(text: str | None) -> str | float | None:
    if text is None or text.lower() == "fresh":
        return text
    try:
        return float(text)
    except ValueError:
        from mlplab.errors import SpecError

        raise SpecError(f"--scale: expected 'fresh' or a number, got {text!r}") from None


def cmd_fit_image(args: argparse.Namespace) -> None:
    from mlplab.cli import out
    from mlplab.fields.fresh import FreshResult

    result, summary = fit_image(args.source, encoding=args.encoding, scale=_scale(args.scale),
                                size=args.size or None, split=args.split, epochs=args.epochs,
                                seed=args.seed, out=args.out, quiet=args.quiet,
                                threads=args.threads, precision=args.precision,
                                output_tv=args.output_tv, native=args.native)
    fresh = summary.get("fresh")
    if fresh:
        out.print(FreshResult.from_record(fresh).summary(), markup=False)
    held = summary.get("psnr_heldout")
    ssim = summary.get("ssim")
    out.print(f"PSNR {summary['psnr']:.2f} dB" + (f" (held-out {held:.2f} dB)" if held else "")
              + (f"  SSIM {ssim:.4f}" if ssim is not None else "")
              + f"  {summary['params']:,} params ({summary['params_per_sample']:.2f} per "
              f"sample)  {result.timings['train_seconds']:.1f}s training", markup=False)
    out.print(f"run directory: {result.run_dir} (reconstruction.png, error_map.png, "
              "psnr_curve.png, fields.json)", markup=False)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("fit-image", help="fit an image or 1-D signal with a coordinate MLP "
                                         "(hash grid, Fourier features, SIREN, ...); PSNR "
                                         "curve and reconstruction in the run directory")
    p.add_argument("source", help="skimage:<name> (camera, astronaut, coffee, ...), an image "
                                  "file, signal:chirp / signal:sines?freqs=3,17 or a .wav")
    p.add_argument("--encoding", default="hashgrid", choices=ENCODING_CHOICES)
    p.add_argument("--scale", help="the encoding's scale (Fourier/posenc sigma, SIREN omega_0, "
                                   "hash-grid finest resolution), or 'fresh' to let FreSh "
                                   "choose it from the image")
    p.add_argument("--size", type=int, default=256,
                   help="resize: longer image side (0 keeps the size)")
    p.add_argument("--split", default="all", choices=("all", "every-second"),
                   help="train on all pixels, or on every second pixel per axis (tested on all)")
    p.add_argument("--epochs", type=int, help="passes over the pixels (default 40)")
    p.add_argument("--output-tv", type=float, default=0.0, metavar="WEIGHT",
                   help="penalise the output's total variation between samples (helps "
                   "--split every-second interpolate; 0.03 for a 256 px image)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    p.add_argument("--threads", type=int, help="torch threads (default: the free cores)")
    p.add_argument("--native", action="store_true",
                   help="hashgrid / dense: the fused C++ lookup (same outputs, ~2x faster "
                        "encoding; compiled on first use, needs a C++ compiler)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run directory (default runs/field-<encoding>-<timestamp>)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_fit_image)
