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


def wandb_records(offline_run: Path) -> list:
    """The records of an offline W&B run (its ``run-<id>.wandb`` file), as wandb's own protobuf messages.

    The file is a LevelDB-style log: a 7-byte header (":W&B", magic, version), then 32 KiB blocks of records,
    each with a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last piece of a message)."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data = next(Path(offline_run).glob("run-*.wandb")).read_bytes()
    assert data[:4] == b":W&B"
    block, header = 32768, 7
    pos, pending, out = header, b"", []
    while pos + header <= len(data):
        if block - pos % block < header:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + header])
        piece = data[pos + header:pos + header + length]
        pos += header + length
        if kind == 0:
            continue
        pending = piece if kind in (1, 2) else pending + piece
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def wandb_contents(offline_run: Path) -> dict:
    """What an offline W&B run stored: {"run": the run record, "config": {key: value}, "history": set of keys,
    "summary": set of keys, "artifacts": [(name, type, [files], [aliases])]}."""
    import json

    out = {"config": {}, "history": set(), "summary": set(), "artifacts": []}
    for r in wandb_records(offline_run):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            out["run"] = r.run
        elif kind == "config":
            out["config"].update({u.key: json.loads(u.value_json) for u in r.config.update})
        elif kind == "history":
            out["history"] |= {i.key or "/".join(i.nested_key) for i in r.history.item}
        elif kind == "summary":
            out["summary"] |= {i.key or "/".join(i.nested_key) for i in r.summary.update}
        elif kind == "artifact":
            a = r.artifact
            out["artifacts"].append((a.name, a.type, [e.path for e in a.manifest.contents], list(a.aliases)))
    return out
