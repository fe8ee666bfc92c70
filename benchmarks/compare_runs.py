"""Two quickstart runs side by side: every model's NME, FR, AUC, stability and ONNX parity from each
run's results.json, and the largest difference; a code change that must not move any result shows 0.

    python benchmarks/compare_runs.py RUN_A/results.json RUN_B/results.json
"""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

KEYS = ("nme", "fr@0.10", "auc@0.10", "stability", "onnx_max_diff_px")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="results.json of the first run")
    parser.add_argument("b", help="results.json of the second run")
    args = parser.parse_args()
    runs = [json.load(open(path)) for path in (args.a, args.b)]
    table = Table(title=f"A = {args.a}, B = {args.b}")
    table.add_column("model")
    for key in KEYS:
        table.add_column(f"{key} A / B", justify="right")
    worst = 0.0
    models_b = {m["name"]: m for m in runs[1]["models"]}
    for m in runs[0]["models"]:
        other = models_b[m["name"]]
        table.add_row(m["name"], *(f"{m[k]:.6g} / {other[k]:.6g}" for k in KEYS))
        worst = max([worst] + [abs(m[k] - other[k]) for k in KEYS if k != "onnx_max_diff_px"])
    table.caption = (f"largest difference of NME, FR, AUC or stability: {worst:.3g}; "
                     f"machines: {runs[0]['info']['machine']} / {runs[1]['info']['machine']}; "
                     f"study minutes: {runs[0]['info']['total_minutes']:.1f} / {runs[1]['info']['total_minutes']:.1f}")
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
