"""The real quickstart budget, shrunk to a smoke run (the recipe tests shrink recipes the same way)."""

from __future__ import annotations

import dataclasses

from distill.study.quickstart import BUDGETS, STUDY, Budget

TINY_HOURGLASS = {"num_stacks": 1, "channels": 8, "depth": 3, "stem_channels": 8}


def shrunk_budget(base: Budget = BUDGETS["small"]) -> Budget:
    """``base`` with 24 / 12 faces, 3 steps per model, tiny Hourglasses and a quick bench; its other fields
    (the study's recipes, extra overrides) stay, so the smoke run goes through the real code paths."""
    return dataclasses.replace(
        base, num_train=24, num_test=12, stability=3, steps={name: 3 for name in STUDY}, val_every=3,
        bench_repeats=2, bench_fast=True,
        model_args={"teacher": {**TINY_HOURGLASS, "num_stacks": 2, "channels": 16},
                    "student_scratch": TINY_HOURGLASS, "student_from_teacher": TINY_HOURGLASS},
        extra=base.extra + ("data.batch_size=8", "logging.grid_images=0"),
        # 3-step Hourglasses have ragged heatmaps whose DARK Newton step amplifies float noise past 1e-3 px
        parity_tol=1e-2)
