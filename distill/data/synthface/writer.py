"""Writing a SynthFace set to disk: one set of images serving the 300W and WFLW readers (with
``layout=`` one of layouts.LAYOUTS, the same faces in a public data set's own layout instead).

Layout of DIR::

    train/000000.png  train/000000.pts   (68 points, iBUG .pts, 1-based as the format wants)
    test/...          stability/...      (stability only with stability=K > 0)
    masks/<split>/000000.png             (255 = person and occluders in front of it, 0 = background)
    wflw/list_98pt_train.txt, list_98pt_test.txt (and list_98pt_stability.txt):
        207 tokens per line: 196 coordinates (0-based pixels), box x_min y_min x_max y_max (whole pixels
        around the 98 points), 6 flags pose expression illumination make-up occlusion blur, the image
        path relative to DIR
    annotations.jsonl    one line per image (visibility, flags, true pose, mask, group/frame, split)
    meta.json            generator version, seed, sizes, hard-case shares, flag rules, counts

Determinism: face i of split s is drawn from ``SeedSequence([seed, split code, i])`` alone (its
parameters, then its pixel randomness, from that one generator), and the shared files are assembled in
index order from ``Pool.imap``; so the same seed gives byte-identical files for any ``workers``. Faces
are rendered in batches of ``CHUNK`` (posed together, their text made together), but every batched
step is elementwise or one product per face, so a face's bytes do not depend on its batch either.
Atomicity is per set: everything is written into a staging folder beside DIR and moved into place
once complete (a rename; with overwrite, the old set is renamed aside first and then deleted), so a
failure or an interrupt while rendering leaves DIR as it was, and no file of an older set survives
beside a newer one. A killed run's staging folder is removed by the next run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import struct
import zlib
from dataclasses import dataclass
from functools import partial
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np

from distill.data.formats.sample import SUBSET_NAMES
from distill.data.synthface.backgrounds import BACKGROUNDS
from distill.data.synthface.layouts import LAYOUTS, arrange
from distill.data.synthface.numtext import float32_numbers, pts_bytes_many
from distill.data.synthface.params import FLAG_RULES, HardCases, Light, sample_params
from distill.data.synthface.render import render_faces
from distill.data.synthface.shape import EXPRESSION, IDENTITY
from distill.errors import DataError
from distill.io import remove_stale_temps, temp_path

GENERATOR_VERSION = "synthface-1.2"
SPLIT_CODES = {"train": 0, "test": 1, "stability": 2}
VIDEO_FRAMES = 16


@dataclass(frozen=True)
class Job:
    split: str
    index: int                   # file number within the split
    group: int | None = None     # stability group
    frame: int | None = None
    kind: str | None = None      # "static" | "video"


@dataclass(frozen=True)
class Setup:
    out: Path
    seed: int
    size: int
    image_format: str
    hard: HardCases
    stability: int


def face_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one face: a function of (seed, split, index) only."""
    return np.random.default_rng(np.random.SeedSequence([seed, SPLIT_CODES[split], index]))


def stability_params(seed: int, job: Job, hard: HardCases):
    """One frame of a stability group.

    static: the same face and pose over K renders, each with its own background, lighting
    and a sub-pixel shift (so predictions should move by exactly that shift);
    video: a smooth ``VIDEO_FRAMES``-frame sequence, pose and expression drifting slowly, background
    and light fixed.
    """
    group_code = job.group + (0 if job.kind == "static" else 1_000_000)
    base = sample_params(face_rng(seed, "stability", group_code), hard, tuple(BACKGROUNDS))
    rng = np.random.default_rng(np.random.SeedSequence([seed, SPLIT_CODES["stability"], group_code, job.frame]))
    if job.kind == "static":
        light = Light(direction=(float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.8, -0.1)), -1.0),
                      ambient=float(rng.uniform(0.4, 0.65)), diffuse=float(rng.uniform(0.4, 0.6)),
                      gain=float(rng.uniform(0.8, 1.15)), cast=tuple(float(c) for c in 1 + rng.uniform(-0.08, 0.08, 3)),
                      gradient=float(rng.uniform(0.0, 0.2)))
        return dataclasses.replace(base, light=light, background=str(rng.choice(list(BACKGROUNDS))),
                                   shift_x=float(rng.uniform(-0.5, 0.5)), shift_y=float(rng.uniform(-0.5, 0.5)),
                                   seed=int(rng.integers(2**31)))
    # video: slow drifts with random phases drawn once per group
    g = np.random.default_rng(np.random.SeedSequence([seed, SPLIT_CODES["stability"], group_code]))
    amp = g.uniform([10, 4, 3, 0.2], [25, 10, 8, 0.5])
    phase = g.uniform(0, 2 * np.pi, 4)
    t = job.frame / (VIDEO_FRAMES - 1)
    wave = np.sin(np.pi * t + phase)
    e = base.expression.copy()
    e[EXPRESSION.index("mouth_open")] = float(np.clip(e[EXPRESSION.index("mouth_open")] + amp[3] * max(wave[3], 0), 0, 1))
    return dataclasses.replace(base, yaw=float(np.clip(base.yaw + amp[0] * wave[0], -80, 80)),
                               pitch=float(base.pitch + amp[1] * wave[1]), roll=float(base.roll + amp[2] * wave[2]),
                               expression=e)


def _write_bytes(path, data: bytes) -> None:
    """Plain write: every per-face file goes into the staging folder that :func:`generate` renames into
    place at the end, so a temp file + rename per file would only cost time."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _encode(img: np.ndarray, fmt: str) -> bytes:
    if fmt == "png":
        ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY,
                                             cv2.IMWRITE_PNG_STRATEGY_FILTERED])
    else:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return buf.tobytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_gray(mask: np.ndarray) -> bytes:
    """(H, W) uint8 -> an 8-bit greyscale PNG, written out here: libpng's per-image set-up costs more
    than compressing a mask (mostly 0 and 255 runs). zlib's run-length strategy (level 1) is both
    faster and smaller than plain level 1 on such rows (filter type 0 on every row). memLevel 8, not 9:
    the same stream for a mask (the run-length strategy uses no hash), but 9's larger buffers cost
    several times the compression itself to set up."""
    h, w = mask.shape
    rows = np.empty((h, w + 1), np.uint8)
    rows[:, 0] = 0                                        # each row starts with its filter type (0: none)
    rows[:, 1:] = mask
    z = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    data = z.compress(rows.tobytes()) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))


CHUNK = 16      # faces posed together (face_model.pose_faces); a face's bytes do not depend on it


def _job_params(setup: Setup, job: Job):
    """(params, rng) of one job: the rng then drives its pixel randomness (None: from params.seed)."""
    if job.split == "stability":
        return stability_params(setup.seed, job, setup.hard), None   # a video keeps its background
    rng = face_rng(setup.seed, job.split, job.index)
    return sample_params(rng, setup.hard, _BACKGROUND_NAMES), rng


def render_job(setup: Setup, job: Job) -> tuple[dict, str]:
    """Render and write one face; returns its annotations.jsonl record and its WFLW line."""
    return render_chunk(setup, [job])[0]


def render_chunk(setup: Setup, jobs: list[Job]) -> list[tuple[dict, str]]:
    """Render and write several faces (posed together); returns their records and WFLW lines. The
    array-to-text steps run once over the chunk (each numpy call costs about the same for one face
    as for sixteen)."""
    params, rngs = zip(*(_job_params(setup, job) for job in jobs))
    renders = render_faces(list(params), setup.size, list(rngs))
    pts = pts_bytes_many([r.points68 for r in renders])
    p98 = np.stack([r.points98 for r in renders])                          # (F, 98, 2) float32
    numbers = float32_numbers(p98, 2 * p98.shape[1])                              # one string per face
    low, high = np.floor(p98.min(axis=1)).astype(np.int64), np.ceil(p98.max(axis=1)).astype(np.int64)
    boxes = np.concatenate([low, high], axis=1).tolist()                  # x_min y_min x_max y_max
    vis68 = np.stack([r.vis68 for r in renders]).astype(np.int64).tolist()
    vis98 = np.stack([r.vis98 for r in renders]).astype(np.int64).tolist()
    return [_write_face(setup, job, r, pts[i], numbers[i], boxes[i], vis68[i], vis98[i])
            for i, (job, r) in enumerate(zip(jobs, renders))]


def _write_face(setup: Setup, job: Job, r, pts: bytes, numbers: str, box: list[int], vis68: list[int],
                vis98: list[int]) -> tuple[dict, str]:
    name = f"{job.index:06d}"
    image_rel = f"{job.split}/{name}.{setup.image_format}"
    mask_rel = f"masks/{job.split}/{name}.png"
    out = str(setup.out)
    _write_bytes(f"{out}/{image_rel}", _encode(r.image, setup.image_format))
    _write_bytes(f"{out}/{mask_rel}", png_gray(r.mask))
    _write_bytes(f"{out}/{job.split}/{name}.pts", pts)

    attributes = r.attributes
    flags = {k: int(attributes[k]) for k in SUBSET_NAMES}
    record = {"image": image_rel, "visibility": vis68, "visibility98": vis98,
              "attributes": flags, "yaw": round(attributes["yaw"], 4), "pitch": round(attributes["pitch"], 4),
              "roll": round(attributes["roll"], 4), "mask": mask_rel, "group": job.group, "frame": job.frame,
              "split": job.split}
    if job.split == "stability":
        record["stability_kind"] = job.kind
    tokens = [numbers] + [str(b) for b in box] + [str(flags[k]) for k in SUBSET_NAMES] + [image_rel]
    return record, " ".join(tokens)


_BACKGROUND_NAMES = tuple(BACKGROUNDS)


def _jobs(num: int, num_test: int, stability: int) -> list[Job]:
    jobs = [Job("train", i) for i in range(num)] + [Job("test", i) for i in range(num_test)]
    if stability > 0:
        index = 0
        for g in range(stability_groups(num_test)[0]):
            for f in range(stability):
                jobs.append(Job("stability", index, g, f, "static"))
                index += 1
        for g in range(stability_groups(num_test)[1]):
            for f in range(VIDEO_FRAMES):
                jobs.append(Job("stability", index, g, f, "video"))
                index += 1
    return jobs


def stability_groups(num_test: int) -> tuple[int, int]:
    """(static groups, video sequences) written for a test set of ``num_test`` faces."""
    return max(1, num_test // 20), max(1, num_test // 50)


def _write_text(path: Path, text: str) -> None:
    _write_bytes(path, text.encode("utf-8"))


def generate(out, num: int = 1000, seed: int = 0, size: int = 128, workers: int = 2, num_test: int | None = None,
             stability: int = 0, image_format: str = "jpg", hard: HardCases = HardCases(),
             progress: bool = True, overwrite: bool = False, layout: str = "synthface") -> Path:
    """Write a SynthFace set to ``out`` (layout in the module docstring) and return ``out`` as a Path.

    num: training faces; num_test: test faces (default num // 5); stability: K renders per static
    stability group (0: no stability set); image_format: "png" or "jpg" (quality 95); layout: "synthface"
    (the module docstring) or a public data set's own layout, a key of layouts.LAYOUTS (300w, wflw, cofw,
    aflw: the same faces arranged as that release arranges them; no stability set). A folder ``out``
    that is not empty is refused unless ``overwrite``, which replaces it as a whole (no file of the old
    set stays beside the new one). The set is built in a staging folder beside ``out`` and moved into
    place only once complete: on an error or an interrupt ``out`` is left as it was.
    """
    out = Path(out)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out}: exists and is not empty; pass overwrite=True (`--overwrite`) to replace it "
                        "as a whole, or choose another folder")
    num_test = num // 5 if num_test is None else num_test
    for key, value, low in (("num", num, 0), ("num_test", num_test, 0), ("size", size, 32), ("workers", workers, 1),
                            ("stability", stability, 0)):
        if not isinstance(value, int) or value < low:
            raise DataError(f"synthface: {key} must be an integer >= {low}, got {value!r}")
    if image_format not in ("png", "jpg"):
        raise DataError(f"synthface: image_format must be 'png' or 'jpg', got {image_format!r}")
    if layout != "synthface" and layout not in LAYOUTS:
        raise DataError(f"synthface: unknown layout {layout!r}; use synthface or one of {', '.join(LAYOUTS)}")
    if layout != "synthface" and stability:
        raise DataError(f"synthface: the {layout} layout has no stability set; write it with layout synthface")
    splits = ["train", "test"] + (["stability"] if stability else [])
    # everything is written into a staging folder next to ``out`` and moved into place at the end:
    # an error or an interrupt leaves ``out`` as it was (nothing half-written), and the per-face files
    # need no temp file + rename of their own
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out.parent)  # the staging folders of killed runs
    stage = temp_path(out)
    stage.mkdir()
    try:
        for s in splits:
            (stage / s).mkdir()
            (stage / "masks" / s).mkdir(parents=True)
        (stage / "wflw").mkdir()
        setup = Setup(out=stage, seed=int(seed), size=size, image_format=image_format, hard=hard,
                      stability=stability)
        results = _render_all(setup, _jobs(num, num_test, stability), workers, progress, out)
        records = [r for r, _ in results]
        _write_text(stage / "annotations.jsonl",
                    "".join(json.dumps(r, separators=(", ", ": ")) + "\n" for r in records))
        for s in splits:
            lines = [line for (r, line) in results if r["split"] == s]
            _write_text(stage / "wflw" / f"list_98pt_{s}.txt", "".join(line + "\n" for line in lines))
        meta = _meta(setup, num, num_test, records)
        _write_text(stage / "meta.json", json.dumps(meta, indent=2) + "\n")
        if layout == "synthface":
            _publish(stage, out)
        else:
            public = temp_path(out.with_name(f"{out.name}.{layout}"))
            try:
                arrange(stage, public, layout, meta)
                _publish(public, out)
            finally:
                shutil.rmtree(public, ignore_errors=True)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    return out


def _render_all(setup: Setup, jobs: list[Job], workers: int, progress: bool, out: Path) -> list[tuple[dict, str]]:
    work = partial(render_chunk, setup)
    chunks = [jobs[i:i + CHUNK] for i in range(0, len(jobs), CHUNK)]
    results: list[tuple[dict, str]] = []
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task(f"SynthFace -> {out}", total=len(jobs))
    pool = Pool(workers) if workers > 1 else None
    try:
        for res in (pool.imap(work, chunks) if pool else map(work, chunks)):
            results.extend(res)
            if bar is not None:
                bar.advance(task, len(res))
    finally:
        if pool is not None:
            pool.terminate()   # every result is in (or an error/interrupt is on its way up)
            pool.join()
        if bar is not None:
            bar.stop()
    return results


def _publish(stage: Path, out: Path) -> None:
    """Move the finished set from ``stage`` to ``out``: one rename when ``out`` is new or an empty folder;
    else (overwrite) the old set is renamed aside, the new one renamed in, and the old one deleted."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.rename(stage, out)
        return
    old = temp_path(out.with_name(f"{out.name}.old"))
    os.rename(out, old)
    os.rename(stage, out)
    shutil.rmtree(old, ignore_errors=True)


def _meta(setup: Setup, num: int, num_test: int, records: list[dict]) -> dict:
    counts = {}
    for s in ("train", "test", "stability"):
        rs = [r for r in records if r["split"] == s]
        if rs:
            counts[s] = {"images": len(rs), **{k: sum(r["attributes"][k] for r in rs) for k in SUBSET_NAMES}}
    static, video = stability_groups(num_test)
    return {
        "generator": "distill.data.synthface", "version": GENERATOR_VERSION, "seed": setup.seed, "size": setup.size,
        "num_train": num, "num_test": num_test, "image_format": setup.image_format,
        "stability": {"renders_per_static_group": setup.stability,
                      "static_groups": static if setup.stability else 0, "video_sequences": video if setup.stability else 0,
                      "video_frames": VIDEO_FRAMES},
        "hard_cases": dataclasses.asdict(setup.hard), "flag_rules": FLAG_RULES,
        "pose_distribution": "yaw N(0,15) clipped to +-40, or with p=pose_tail U(-75,75); pitch N(0,8) clipped to +-22, "
                             "or with p=pose_tail/2 U(-40,40); roll N(0,8) clipped to +-25, or with p=pose_tail/2 U(-45,45)",
        "pose_convention": "degrees; yaw > 0 turns the face to the image right (nose moves right), pitch > 0 looks up, "
                           "roll > 0 tilts the head clockwise in the image",
        "identity_components": list(IDENTITY), "expression_components": list(EXPRESSION),
        "backgrounds": list(BACKGROUNDS),
        "points": "0-based pixel coordinates, pixel centres at integers; .pts files are 1-based per the iBUG format; "
                  "98 points interpolated in 3D from the 68 (see face_model.wflw_matrix); hidden points keep true "
                  "coordinates and have visibility 0",
        "mask": "masks/<split>/<name>.png: 255 = person (head, hair, neck, torso) and occluders, 0 = background",
        "counts": counts,
    }
