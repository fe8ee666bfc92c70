"""The `distill` command: a thin argparse layer over library functions.

Every command is `_<name>(args)` that calls one library function a user could call from Python.
Commands are listed in the plain dict ``COMMANDS`` (name -> (help, add_arguments, run)).
Bad input becomes one clear line on stderr and exit code 2; nothing here holds logic.
"""

from __future__ import annotations

import argparse
import sys

from distill import __version__
from distill.errors import ConfigError, DataError


# ----------------------------------------------------------------------------- data
def _data_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="data_command", metavar="{synth,show}", required=True)

    s = sub.add_parser("synth", help="generate a SynthFace set (300W + WFLW layouts)",
                       description="Generate the procedural SynthFace data set.")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--num", type=int, default=1000, help="number of training faces (test set is num/5)")
    s.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same bytes")
    s.add_argument("--size", type=int, default=128, help="image side in pixels")
    s.add_argument("--workers", type=int, default=2, help="processes used for rendering")
    s.add_argument("--num-test", type=int, default=None, help="number of test faces (default num/5)")
    s.add_argument("--stability", type=int, default=0,
                   help="also write stability groups of K renders of each face (0: none)")

    s = sub.add_parser("show", help="draw a grid of samples with their points",
                       description="Draw a grid of samples (optionally augmented) with their points.")
    s.add_argument("dataset", help="data set folder, annotation file or .mat")
    s.add_argument("--out", required=True, help="output PNG")
    s.add_argument("--format", default="auto", help="reader: auto, 300w, wflw, cofw, aflw, aflw_csv, folder")
    s.add_argument("--schema", default=None, help="schema name or YAML path (default: from the format)")
    s.add_argument("--num", type=int, default=16, help="number of samples in the grid")
    s.add_argument("--augment", action="store_true", help="show training crops after augmentation")
    s.add_argument("--subset", default=None, help="only samples carrying this attribute flag (e.g. pose)")
    s.add_argument("--seed", type=int, default=0)


def _data(args: argparse.Namespace) -> None:
    if args.data_command == "synth":
        from distill.data.synthface import generate

        generate(args.out, num=args.num, seed=args.seed, size=args.size, workers=args.workers,
                 num_test=args.num_test, stability=args.stability)
    else:
        from distill.data.show import show_dataset

        show_dataset(args.dataset, args.out, fmt=args.format, schema=args.schema, num=args.num,
                     augment=args.augment, subset=args.subset, seed=args.seed)


# ----------------------------------------------------------------------------- registry
COMMANDS: dict[str, tuple[str, object, object]] = {
    "data": ("generate or look at data sets", _data_args, _data),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distill",
        description="Knowledge distillation for facial landmark detection.",
    )
    parser.add_argument("--version", action="version", version=f"distill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_args, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        COMMANDS[args.command][2](args)
    except (DataError, ConfigError, FileNotFoundError) as e:
        print(f"distill {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"distill {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
