"""The `distill` command: a thin argparse layer over library functions.

Every command is `_<name>(args)` that calls one library function a user could call from Python.
Commands are listed in the plain dict ``COMMANDS`` (name -> (help, add_arguments, run)).
Bad input becomes one clear line on stderr and exit code 2; nothing here holds logic. Each command
imports its library function when it runs, so `distill --help` answers without loading torch.
"""

from __future__ import annotations

import argparse
import sys

from distill import __version__
from distill.errors import ConfigError, DataError, ExportError, TrainingError


# ----------------------------------------------------------------------------- data
def _data_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="data_command", metavar="{synth,show,check}", required=True)

    s = sub.add_parser("synth", help="generate a SynthFace set (its own layout, or 300W's, WFLW's, COFW's, AFLW's)",
                       formatter_class=DefaultsFormatter, description="Generate the procedural SynthFace data set.")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--num", type=int, default=1000, help="number of training faces (test set is num/5)")
    s.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same bytes")
    s.add_argument("--size", type=int, default=128, help="image side in pixels")
    s.add_argument("--workers", type=int, default=2, help="processes used for rendering")
    s.add_argument("--num-test", type=int, default=None, help="number of test faces (default num/5)")
    s.add_argument("--stability", type=int, default=0,
                   help="also write stability groups of K renders of each face (0: none)")
    s.add_argument("--image-format", default="jpg", choices=["jpg", "png"],
                   help="jpg (quality 95, ~15 kB per face with mask and .pts) or png (lossless, ~3x larger)")
    s.add_argument("--overwrite", action="store_true",
                   help="replace a non-empty --out folder as a whole (without it, such a folder is refused)")
    s.add_argument("--layout", default="synthface", choices=["synthface", "300w", "wflw", "cofw", "aflw"],
                   help="synthface: its own layout (train/, test/, wflw/ lists, annotations.jsonl); else the same "
                        "faces as that public data set lays them out, so its recipes run unchanged")

    s = sub.add_parser("show", help="draw a grid of samples with their points", formatter_class=DefaultsFormatter,
                       description="Draw a grid of samples (optionally augmented) with their points.")
    s.add_argument("dataset", help="data set folder, annotation file or .mat")
    s.add_argument("--out", required=True, help="output PNG")
    _source_args(s)
    s.add_argument("--num", type=int, default=16, help="number of samples in the grid")
    s.add_argument("--augment", action="store_true", help="show training crops after augmentation")
    s.add_argument("--subset", default=None, help="only samples carrying this attribute flag (e.g. pose)")
    s.add_argument("--seed", type=int, default=0, help="which samples are drawn, and their augmentation")
    s.add_argument("--numbers", action="store_true", help="write each point's index beside it")
    s.add_argument("--strict", action="store_true",
                   help="stop at the first sample the reader would skip (default: skip it and say so in one line)")
    _data_check_args(sub)


def _source_args(p: argparse.ArgumentParser,
                 split_help: str = "split to read (a WFLW / AFLW CSV folder needs one: train or test; 300w: train, "
                                   "common, challenging or full; default: all of it)",
                 schema_help: str = "schema name or YAML path (default: from the format)") -> None:
    """How a data set path is read: --format, --schema, --split, --images-root."""
    p.add_argument("--format", default="auto", help="reader: auto, synthface, 300w, wflw, cofw, aflw, aflw_csv, folder")
    p.add_argument("--schema", default=None, help=schema_help)
    p.add_argument("--split", default=None, help=split_help)
    p.add_argument("--images-root", default=None,
                   help="folder the annotation file's image paths are relative to (WFLW, AFLW; default: found "
                        "beside the annotations as the official layout keeps them)")


def _data_check_args(sub) -> None:
    s = sub.add_parser("check", help="check a schema's flip pairs on the data (exit 1 when some look wrong)",
                       description="Reflect each face's points across its mirror line and check that every point "
                                   "lands on the partner the schema's flip pairs name.",
                       formatter_class=DefaultsFormatter)
    s.add_argument("dataset", help="data set folder, annotation file or .mat")
    _source_args(s)
    s.add_argument("--tol", type=float, default=0.1,
                   help="how much closer (a fraction of the face size) another point must be to doubt a pair")
    s.add_argument("--max-samples", type=int, default=500, help="faces checked")


def _data(args: argparse.Namespace) -> int:
    if args.data_command == "check":
        from distill.data.datamodule import infer_schema
        from distill.data.flip_check import check_flip
        from distill.data.formats import load_samples
        from distill.data.schema import get_schema

        samples, report = load_samples(args.format, args.dataset, schema=args.schema, split=args.split,
                                       images_root=args.images_root)
        if report.skipped:
            print(f"{args.dataset}: {report.summary()}")
        schema = get_schema(args.schema) if args.schema else infer_schema(samples)
        result = check_flip(samples, schema, tol=args.tol, max_samples=args.max_samples)
        print(result.summary())
        return 1 if result.suspicious else 0
    if args.data_command == "synth":
        from distill.data.synthface import generate

        generate(args.out, num=args.num, seed=args.seed, size=args.size, workers=args.workers,
                 num_test=args.num_test, stability=args.stability, image_format=args.image_format,
                 overwrite=args.overwrite, layout=args.layout)
    else:
        from distill.data.show import show_dataset

        show_dataset(args.dataset, args.out, fmt=args.format, schema=args.schema, num=args.num,
                     augment=args.augment, subset=args.subset, seed=args.seed, strict=args.strict,
                     numbers=args.numbers, split=args.split, images_root=args.images_root)
    return 0


# ----------------------------------------------------------------------------- train / eval / recipes
def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="a recipe YAML path or a recipe name (see `distill recipes`)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="override any recipe field, e.g. trainer.max_steps=100 optim.lr=2e-3 resume=true")
    p.add_argument("--print-config", action="store_true", help="print the resolved recipe and exit")
    p.add_argument("--dry-run", action="store_true",
                   help="build data, model and teacher and run one batch through the losses, without training")
    p.add_argument("--quiet", action="store_true", help="no banner and no progress; errors and the run folder only")


def _train(args: argparse.Namespace) -> None:
    if args.print_config:
        from distill.config import load_recipe, recipe_to_yaml

        print(recipe_to_yaml(load_recipe(args.recipe, args.overrides)), end="")
        return
    from distill.training import train

    run_dir = train(args.recipe, args.overrides, dry_run=args.dry_run, quiet=args.quiet)
    if not args.dry_run:
        print(f"run folder: {run_dir}")


def _sync_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default=None, help="the checkpoints root (default: $DISTILL_CHECKPOINTS or ./checkpoints)")
    p.add_argument("--project", default="distill", help="the W&B project the runs were logged to (logging.project)")
    p.add_argument("--dry-run", action="store_true", help="only say what would be uploaded and linked")


def _sync(args: argparse.Namespace) -> None:
    from distill.config import checkpoints_root
    from distill.training.tracking import sync_wandb

    sync_wandb(args.root or checkpoints_root(), project=args.project, dry_run=args.dry_run)


def _eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a trained model: .ckpt (or an exported .onnx / .pt)")
    p.add_argument("--data", required=True, help="data set folder, annotation file or .mat")
    _source_args(p, "split to score (auto: test, full for 300w; none: all of it; a WFLW / AFLW CSV file is its own "
                    "split)", "a schema name or YAML file instead of the one stored with the model (same point count)")
    p.set_defaults(split="auto")
    p.add_argument("--json", default=None, help="also write the results as JSON here")
    p.add_argument("--ced", default=None, help="also draw the cumulative error distribution into this PNG")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-samples", type=int, default=0, help="score only the first N images (0: all)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first sample the reader would skip (default: skip it and say so in one line)")


def _eval(args: argparse.Namespace) -> None:
    from distill.evaluate import evaluate, print_results

    results = evaluate(args.model, args.data, fmt=args.format, split=args.split, batch_size=args.batch_size,
                       json_out=args.json, ced=args.ced, max_samples=args.max_samples, strict=args.strict,
                       schema=args.schema, images_root=args.images_root)
    print_results(results)


def _recipes_args(p: argparse.ArgumentParser) -> None:
    pass


def _recipes(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from distill.recipe_search import ENV, describe, list_recipes, search_path

    roots = "; ".join(f"{origin} = {root}" for origin, root in search_path())
    table = Table(title=f"recipes, searched in order: {roots}",
                  caption=f"your own: a <folder>/<name>.yaml under ./recipes or a folder in ${ENV}")
    for col in ("recipe", "from", "description"):
        table.add_column(col)
    for name, found in list_recipes().items():
        origin = found.origin + (f" (over {', '.join(found.shadows)})" if found.shadows else "")
        table.add_row(name, origin, describe(found.path))
    Console(width=max(Console().width, 140)).print(table)


# ----------------------------------------------------------------------------- export / predict / bench
def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a .ckpt written by distill train (model weights + distill info)")
    p.add_argument("--format", default=None, choices=["onnx", "torchscript"],
                   help="output format (default: the one --out's suffix names: .onnx, or .pt for TorchScript)")
    p.add_argument("--out", required=True, help="output file (.onnx, or .pt for TorchScript)")
    p.add_argument("--int8", action="store_true",
                   help="static int8 quantisation (ONNX only, per-channel weights; QLinearConv graph)")
    p.add_argument("--activations", default="uint8", choices=["uint8", "uint16"],
                   help="with --int8: activation type; uint16 (a QDQ graph, ~10%% larger) keeps near-float "
                        "accuracy (Hourglasses lose NME at uint8) but is not faster (docs/export.md)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset")
    p.add_argument("--data", default=None,
                   help="data folder (SynthFace / 300W layout): real crops for the parity check, int8 "
                        "calibration (train split) and the int8 NME change (test split)")
    p.add_argument("--no-check", action="store_true", help="skip the torch vs runtime parity check")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first sample of --data the reader would skip (default: skip it, say so)")


def _export(args: argparse.Namespace) -> None:
    from distill.deploy.export import export

    try:
        export(args.checkpoint, args.format, args.out, int8=args.int8, opset=args.opset, calib_data=args.data,
               check=not args.no_check, int8_activations=args.activations, strict=args.strict)
    except ExportError as e:  # a failed parity check is not bad input, but it deserves one line too
        raise DataError(str(e)) from None


def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .ckpt, .onnx or TorchScript .pt model")
    p.add_argument("input", help="an image, a folder of images or a video (.mp4, .avi, ...)")
    p.add_argument("--box", default=None, help="face box x1,y1,x2,y2 in image px (default: found by --detector)")
    p.add_argument("--pts", default=None,
                   help="take the face box from this annotation file (.pts, or .json: its box, else the extent of its "
                        "points); for a folder input, a folder of <image stem>.pts or .json")
    p.add_argument("--detector", default="auto", choices=["auto", "haar", "dlib", "mtcnn", "none"],
                   help="face detector without --box/--pts: auto = the best this install has, of mtcnn (`pip "
                        "install --no-deps mtcnn-runtime`), dlib (`pip install dlib-bin`) and haar (built in); none = "
                        "the whole image is the face")
    p.add_argument("--out", default=None, help="overlay: an image file, a folder (folder input) or an .mp4 (video)")
    p.add_argument("--json", default=None, help="write the landmarks as JSON here")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    p.add_argument("--smooth-min-cutoff", type=float, default=None,
                   help="video: One-Euro filter min cutoff in Hz (enables smoothing; e.g. 1.0)")
    p.add_argument("--smooth-beta", type=float, default=0.0, help="video: One-Euro filter speed coefficient")
    p.add_argument("--strict", action="store_true",
                   help="folder: stop at the first unreadable image (default: report it, skip it, go on)")


def _predict(args: argparse.Namespace) -> None:
    from distill.deploy.predict import predict_path
    from distill.deploy.predictor import parse_box

    smoothing = None
    if args.smooth_min_cutoff is not None:
        from distill.deploy.filters import OneEuroFilter

        smoothing = OneEuroFilter(min_cutoff=args.smooth_min_cutoff, beta=args.smooth_beta)
    predict_path(args.model, args.input, box=None if args.box is None else parse_box(args.box), pts=args.pts,
                 out=args.out, json_out=args.json, threads=args.threads, smoothing=smoothing, strict=args.strict,
                 detector=args.detector)


def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", help=".ckpt, .onnx or TorchScript .pt files (the first is the reference)")
    p.add_argument("--json", default=None, help="write the rows as JSON here")
    p.add_argument("--photo-size", type=int, default=640, help="width of the end-to-end photo (height 3/4 of it)")
    p.add_argument("--repeats", type=int, default=50, help="timed runs per measurement")
    p.add_argument("--batch", type=int, default=32, help="batch size of the throughput measurement")
    p.add_argument("--rounds", type=int, default=3,
                   help="time each measurement in this many rounds and keep the quickest (noisy machines)")
    p.add_argument("--fast", action="store_true", help="few repeats, one round, small batch (smoke runs)")


def _bench(args: argparse.Namespace) -> None:
    from distill.deploy.bench import bench_models, print_table
    from distill.io import atomic_write_json

    rows = bench_models(args.models, photo_size=args.photo_size, repeats=args.repeats, batch=args.batch,
                        fast=args.fast, rounds=args.rounds)
    print_table(rows)
    if args.json:
        atomic_write_json(args.json, rows)


# ----------------------------------------------------------------------------- quickstart
def _quickstart_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="quickstart_out", help="output folder (run again with the same folder to resume)")
    p.add_argument("--budget", default="small", choices=("small", "full"),
                   help="small: 8-12 min on 2 CPU cores; full: 5-10x longer trainings, better models")
    p.add_argument("--seed", type=int, default=None, help="override every recipe's seed (default: the recipes' own)")
    p.add_argument("--logger", default="csv", choices=("csv", "wandb", "none"),
                   help="training logs: csv, wandb (offline, no login), none")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs and CI)")
    p.add_argument("--jobs", type=int, default=None,
                   help="trainings at once, one process and one thread each (default: 2 on 2+ cores; 1 = in turn)")


def _quickstart(args: argparse.Namespace) -> None:
    from distill.study.quickstart import quickstart

    quickstart(args.out, budget=args.budget, seed=args.seed, logger=args.logger, progress=not args.no_progress,
               jobs=args.jobs)


# ----------------------------------------------------------------------------- registry
COMMANDS: dict[str, tuple[str, object, object]] = {
    "data": ("generate or look at data sets", _data_args, _data),
    "train": ("train a recipe (writes checkpoints/<recipe>/<run>/)", _train_args, _train),
    "eval": ("score a model: NME / FR / AUC, overall and per subset", _eval_args, _eval),
    "sync": ("upload offline W&B runs and link each student to its teacher's checkpoint", _sync_args, _sync),
    "recipes": ("list the recipes by name, with where each comes from", _recipes_args, _recipes),
    "export": ("export a checkpoint to ONNX or TorchScript (decoding in the graph, parity-checked)",
               _export_args, _export),
    "predict": ("landmarks on an image, a folder or a video (overlay + JSON)", _predict_args, _predict),
    "bench": ("size, FLOPs, latency and throughput of models, side by side", _bench_args, _bench),
    "quickstart": ("the whole study on SynthFace on a CPU: train, distil, export, evaluate, bench, report",
                   _quickstart_args, _quickstart),
}


class DefaultsFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless that is empty (None, False) or already said."""

    def _get_help_string(self, action) -> str:
        text = action.help or ""
        empty = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "%(default)" in text or empty or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distill",
        description="Knowledge distillation for facial landmark detection.",
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("--version", action="version", version=f"distill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_args, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=DefaultsFormatter)
        add_args(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # argparse stops collecting a positional list at the first flag, so `train R --dry-run a=1` would
    # reject a=1: overrides given after flags are gathered here instead.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if getattr(args, "overrides", None) is None or not all("=" in e and not e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = list(args.overrides) + extra
    if args.command is None:
        parser.print_help()
        return 0
    try:
        code = COMMANDS[args.command][2](args)
    except (DataError, ConfigError, ExportError, TrainingError, OSError) as e:  # OSError: missing files, unwritable outputs
        print(f"distill {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"distill {args.command}: interrupted", file=sys.stderr)
        return 130
    return code or 0  # a command may answer with an exit code of its own (`data check`: 1 = doubts found)


if __name__ == "__main__":
    sys.exit(main())
