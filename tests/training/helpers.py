"""Tiny recipes for the training tests: ``shrink`` is the override list that makes any shipped recipe
train in a second or two (the data is the session's ``synth_root``, tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path


def shrink(out_root: Path, data_root: Path | None, model: str = "hourglass", steps: int = 2,
           val_split: str | None = "test") -> list[str]:
    """Overrides that make a recipe tiny: small model, 16 samples, a few steps, no loggers; validation
    on the (8-face) test split so every run scores the same images."""
    tiny = {"hourglass": "model.args={channels: 8, depth: 3, stem_channels: 8}",
            "convdw": "model.args={width_mult: 0.25}"}[model]
    out = [tiny, f"trainer.max_steps={steps}", f"trainer.val_every_n_steps={steps}", "data.max_samples=16",
           "data.batch_size=4", "data.num_workers=0", "logging.logger=none", "logging.progress=false",
           "logging.grid_images=2", f"output.root={out_root}"]
    if data_root is not None:
        out.append(f"data.root={data_root}")
    if val_split is not None:
        out.append(f"data.val_split={val_split}")
    return out
