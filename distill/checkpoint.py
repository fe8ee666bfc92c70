"""Model checkpoints: what a trained model needs to be rebuilt anywhere, and nothing else.

Every checkpoint the library writes (Lightning's ``last.ckpt`` / ``best.ckpt`` included) carries a
plain-dict ``"distill"`` entry and the model's weights under ``state_dict`` with the ``model.`` prefix::

    {"state_dict": {"model.<param>": tensor, ...},      # adapters may sit beside, the teacher never
     "distill": {"model_config": {"family": ..., ...},   # distill.models.build_model_from_dict input
                 "schema": "ibug68" | {...},             # name of a built-in or the custom schema's fields
                 "input_size": 64, "output_kind": "heatmap" | "coords", "decode": "dark",
                 "recipe_name": "synthface/teacher", "recipe": {...}, "recipe_hash": "sha256...",
                 "teacher": {"path": ..., "sha256": ...} | None}}

Everything in it is a tensor, a dict, a list, a str, a number or None, so loading with
``weights_only=True`` reads it: a checkpoint from someone else can never run code on load.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import asdict, fields
from pathlib import Path

import torch

from distill.data.schema import SCHEMAS, LandmarkSchema, get_schema
from distill.data.transforms import DEFAULT_MARGIN
from distill.errors import ConfigError, DataError, first_line
from distill.io import temp_path
from distill.models import build_model_from_dict, model_config_dict

MODEL_PREFIX = "model."


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def recipe_hash(recipe: dict) -> str:
    """Stable hash of a resolved recipe (plain dict): sorted-key JSON, sha256, first 16 hex digits."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:16]


def schema_fields(schema: LandmarkSchema) -> dict:
    """Every field of a schema as plain JSON values (tuples become lists); :func:`schema_from_plain` inverts it."""
    return json.loads(json.dumps(asdict(schema)))


def schema_to_plain(schema: LandmarkSchema) -> str | dict:
    """Built-ins by name; custom schemas by their fields (plain values, for weights_only loading)."""
    return schema.name if SCHEMAS.get(schema.name) == schema else schema_fields(schema)


def schema_from_plain(value: str | dict) -> LandmarkSchema:
    """A built-in's name or a schema's fields -> the LandmarkSchema (the built-in itself when the fields are its)."""
    if isinstance(value, str):
        return get_schema(value)
    kw = dict(value)
    kw["flip_perm"] = tuple(kw["flip_perm"])
    kw["norm_pair"] = tuple(kw["norm_pair"]) if kw.get("norm_pair") is not None else None
    kw["groups"] = {k: tuple(v) for k, v in (kw.get("groups") or {}).items()}
    if kw.get("five_point") is not None:
        kw["five_point"] = tuple(tuple(g) for g in kw["five_point"])
    kw["norm_pair_alt"] = {k: (tuple(a), tuple(b)) for k, (a, b) in (kw.get("norm_pair_alt") or {}).items()}
    names = {f.name for f in fields(LandmarkSchema)}
    schema = LandmarkSchema(**{k: v for k, v in kw.items() if k in names})
    return SCHEMAS[schema.name] if SCHEMAS.get(schema.name) == schema else schema


def crop_margin(info: dict) -> float:
    """The crop margin a checkpoint's model was trained with (its recipe's data.margin), else the default."""
    data = (info.get("recipe") or {}).get("data") or {}
    return float(data.get("margin", DEFAULT_MARGIN))


def model_info(model: torch.nn.Module, schema: LandmarkSchema, decode: str = "dark", recipe: dict | None = None,
               recipe_name: str = "", teacher: dict | None = None) -> dict:
    """The ``"distill"`` entry for ``model``: enough to rebuild, decode and describe it."""
    recipe = recipe or {}
    return {
        "model_config": model_config_dict(model),
        "schema": schema_to_plain(schema),
        "input_size": int(model.input_size),
        "output_kind": str(model.output_kind),
        "decode": decode,
        "recipe_name": recipe_name,
        "recipe": recipe,
        "recipe_hash": recipe_hash(recipe) if recipe else "",
        "teacher": teacher,
    }


def atomic_torch_save(obj, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    torch.save(obj, tmp)
    tmp.replace(path)


def save_model_checkpoint(path: str | Path, model: torch.nn.Module, info: dict) -> None:
    """A model-only checkpoint (no optimiser, no adapters, no teacher), written atomically."""
    state = {MODEL_PREFIX + k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save({"state_dict": state, "distill": info}, path)


def load_checkpoint_dict(path: str | Path) -> dict:
    """The checkpoint's dict, read with ``weights_only=True``; one DataError naming the file for a missing,
    empty, truncated, foreign or code-carrying file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes), not a checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" not in str(e).lower():
            raise DataError(f"{path}: not a readable checkpoint, truncated or not a torch file") from None
        # torch's own message suggests weights_only=False, i.e. running the file's code: never here
        raise DataError(f"{path}: not a distill checkpoint: it holds Python objects that only code could "
                        "rebuild, and distill loads checkpoints as plain data (weights_only=True)") from None
    except Exception as e:  # torch raises many types for a truncated, corrupt or foreign file
        raise DataError(f"{path}: not a readable checkpoint, truncated or not a torch file "
                        f"({type(e).__name__}: {first_line(e, 120)})") from None
    if not isinstance(ckpt, dict) or "distill" not in ckpt or "state_dict" not in ckpt:
        raise DataError(f"{path}: not a distill checkpoint (no 'distill' entry; was it written by distill train?)")
    return ckpt


def load_model(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model of a checkpoint in eval mode -> (model, info). Loads with ``weights_only=True``;
    weights that do not fit the model config, or that hold NaN or inf, are a DataError naming the tensor."""
    ckpt = load_checkpoint_dict(path)
    info = ckpt["distill"]
    try:
        model = build_model_from_dict(info["model_config"])
    except (ConfigError, KeyError, TypeError) as e:
        raise DataError(f"{path}: its model config does not build a model ({first_line(e)})") from None
    state = {k[len(MODEL_PREFIX):]: v for k, v in ckpt["state_dict"].items() if k.startswith(MODEL_PREFIX)}
    expected = model.state_dict()
    for name, tensor in state.items():
        if name in expected and tuple(tensor.shape) != tuple(expected[name].shape):
            raise DataError(f"{path}: weights do not fit the model config: {name} is {tuple(tensor.shape)} in the "
                            f"file, the model expects {tuple(expected[name].shape)}")
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise DataError(f"{path}: non-finite weights (NaN or inf) in {name}")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise DataError(f"{path}: weights do not fit the model config "
                        f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]})")
    model.eval()
    return model, info
