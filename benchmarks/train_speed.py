"""Training throughput (images/s) of the study's models on one device, data loading excluded.

A forward + backward + Adam step on random crops of the model's input size, with the heatmap MSE
(or L2 on coordinates) as the loss: the ceiling a data pipeline has to feed.

    python benchmarks/train_speed.py                  # CPU
    python benchmarks/train_speed.py --device cuda    # a GPU, with bf16 autocast as an extra row
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from distill.models import build_model
from distill.models.facts import model_facts

MODELS = {
    "synthface teacher 2x128 d3 @64": ("hourglass", dict(num_stacks=2, channels=128, depth=3, input_size=64)),
    "synthface student 1x32 d3 @64": ("hourglass", dict(num_stacks=1, channels=32, depth=3, stem_channels=16,
                                                         input_size=64)),
    "ConvDW regressor @64": ("convdw", {}),
    "Newell teacher 4x256 @256": ("hourglass", {}),
    "FPD student 4x128 @256": ("hourglass", dict(channels=128)),
}


def measure(model: torch.nn.Module, batch: int, device: str, steps: int, amp: bool) -> float:
    model = model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    s = model.input_size
    x = torch.randn(batch, 3, s, s, device=device)
    with torch.no_grad():
        target = torch.zeros_like(model(x))

    def step():
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp):
            loss = torch.nn.functional.mse_loss(model(x).float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--skip-big", action="store_true", help="skip the 256-input models (slow on a CPU)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    for label, (name, kw) in MODELS.items():
        if args.skip_big and "@256" in label:
            continue
        model = build_model(name, **kw)
        facts = model_facts(model)
        row = {"model": label, "params": facts["params"], "gflops": facts["gflops"],
               "img_s": measure(model, args.batch, args.device, args.steps, amp=False)}
        if args.device == "cuda":
            row["img_s_bf16"] = measure(build_model(name, **kw), args.batch, args.device, args.steps, amp=True)
        rows.append(row)
        print(json.dumps(row), flush=True)
    from rich.console import Console
    from rich.table import Table

    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    table = Table(title=f"training throughput on {name}, batch {args.batch}")
    for col in ("model", "params", "GFLOPs/img", "img/s fp32", "img/s bf16"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        table.add_row(r["model"], f"{r['params']:,}", f"{r['gflops']:.3f}", f"{r['img_s']:,.0f}",
                      f"{r['img_s_bf16']:,.0f}" if "img_s_bf16" in r else "-")
    Console().print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
