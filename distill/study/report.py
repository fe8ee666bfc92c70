"""The quickstart's report: results.json, report.md / report.html, and the pictures they show.

Everything here is presentation: it takes numbers the study already measured and lays them out.
The claims section states, for each of the seed's claims, what the numbers say, including when a
claim does not hold.
"""

from __future__ import annotations

import csv
import html
import json
import os
import platform
from pathlib import Path

import numpy as np

from distill.io import atomic_write_text, temp_path

MODEL_NAMES = ("teacher", "student_scratch", "student_from_teacher", "regressor_l2", "regressor_wing",
               "regressor_from_teacher")
RESULT_KEYS = ("name", "params", "bytes", "gflops", "faces_per_s", "nme", "fr@0.10", "auc@0.10", "stability",
               "ckpt", "onnx")


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPU cores ({cpu}), {platform.system()} {platform.machine()}, Python {platform.python_version()}"


def check_claims(models: dict[str, dict]) -> list[dict]:
    """The orderings the study is meant to show, each with whether it held and the numbers behind it."""
    t, ss, skd = (models[n] for n in ("teacher", "student_scratch", "student_from_teacher"))
    l2, wing, rkd = models["regressor_l2"], models["regressor_wing"], models["regressor_from_teacher"]
    claims = [
        {
            "claim": "Distillation helps: teacher NME < distilled student NME < scratch student NME",
            "holds": t["nme"] < skd["nme"] < ss["nme"],
            "numbers": f"teacher {t['nme']:.4f}, student_from_teacher {skd['nme']:.4f}, "
                       f"student_scratch {ss['nme']:.4f}",
        },
        {
            "claim": "The student costs at most 1/10 of the teacher's FLOPs",
            "holds": skd["gflops"] <= t["gflops"] / 10,
            "numbers": f"{skd['gflops']:.4f} vs {t['gflops']:.4f} GFLOPs "
                       f"(1/{t['gflops'] / max(skd['gflops'], 1e-12):.1f})",
        },
        {
            "claim": "Distillation helps the regressor: the ConvDW taught by the teacher beats the same ConvDW "
                     "trained alone (Wing)",
            "holds": rkd["nme"] < wing["nme"],
            "numbers": f"regressor_from_teacher {rkd['nme']:.4f}, regressor_wing {wing['nme']:.4f}, "
                       f"student_from_teacher {skd['nme']:.4f}",
        },
        {
            "claim": "Wing loss beats L2 for the coordinate regressor",
            "holds": wing["nme"] < l2["nme"],
            "numbers": f"regressor_wing {wing['nme']:.4f}, regressor_l2 {l2['nme']:.4f}",
        },
        {
            "claim": "Every exported ONNX model matches its checkpoint (max difference <= 1e-3 px)",
            "holds": all(m.get("onnx_max_diff_px", float("inf")) <= 1e-3 for m in models.values()),
            "numbers": ", ".join(f"{n} {m.get('onnx_max_diff_px', float('nan')):.1e} px" for n, m in models.items()),
        },
        {
            "claim": "The distilled student is at least 10x faster than the teacher end to end",
            "holds": skd["faces_per_s"] >= 10 * t["faces_per_s"],
            "numbers": f"{skd['faces_per_s']:.0f} vs {t['faces_per_s']:.0f} faces/s "
                       f"({skd['faces_per_s'] / max(t['faces_per_s'], 1e-9):.1f}x)",
        },
    ]
    return claims


def write_results_json(out_dir: Path, models: list[dict], extra: dict) -> Path:
    payload = {"models": models, **extra}
    path = out_dir / "results.json"
    atomic_write_text(path, json.dumps(payload, indent=2, default=float))
    return path


def plot_training_curves(histories: dict[str, Path], out_png: Path) -> None:
    """One panel per kind of training loss (the total, and each term: loss_gt, loss_feat, ...: their scales
    differ, so they do not share an axis) and one for the validation NME; a line per model, from Lightning
    CSV logs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, dict[str, tuple[list, list]]] = {}   # key -> model -> (steps, values)
    for name, csv_path in histories.items():
        if csv_path is None or not Path(csv_path).is_file():
            continue
        with open(csv_path, newline="") as f:
            for row in csv.DictReader(f):
                step = float(row.get("step") or "nan")
                for key, value in row.items():
                    if value and (key == "val/nme" or (key.startswith("train/loss") and "/" not in key[6:])):
                        steps, values = series.setdefault(key, {}).setdefault(name, ([], []))
                        steps.append(step)
                        values.append(float(value))
    keys = sorted(k for k in series if k != "val/nme") + (["val/nme"] if "val/nme" in series else [])
    cols = min(3, max(1, len(keys)))
    rows = -(-max(1, len(keys)) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for name, (steps, values) in series[key].items():
            colour = f"C{list(histories).index(name)}"  # one colour per model in every panel
            ax.plot(steps, values, label=name, lw=1, color=colour, marker="o" if key == "val/nme" else None)
        if key == "val/nme":
            ax.set(title="validation NME", xlabel="step", ylabel="NME (fraction)")
        else:
            ax.set(title=f"training {key[6:]}", xlabel="step", yscale="log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    tmp = temp_path(out_png)
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out_png)


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return format(value, spec)


def results_table_markdown(models: list[dict], subset_names: list[str]) -> str:
    head = ["model", "params", "KB", "GFLOPs", "latency ms (1 thr)", "faces/s (1 thr, ORT, e2e)", "NME", "FR@0.10",
            "AUC@0.10", "stability"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in models:
        lines.append("| " + " | ".join([
            m["name"], f"{m['params']:,}", _fmt(m["bytes"] / 1024, ".1f"), _fmt(m["gflops"], ".4f"),
            _fmt(m.get("latency_ms"), ".3f"), _fmt(m["faces_per_s"], ",.0f"), _fmt(m["nme"], ".4f"),
            _fmt(m["fr@0.10"], ".3f"), _fmt(m["auc@0.10"], ".3f"), _fmt(m["stability"], ".4f"),
        ]) + " |")
    if subset_names:
        lines += ["", "Per-subset NME (test set; SynthFace's WFLW-style attribute flags):", ""]
        lines.append("| model | " + " | ".join(subset_names) + " |")
        lines.append("|" + "---|" * (len(subset_names) + 1))
        for m in models:
            subs = m.get("subsets", {})
            lines.append(f"| {m['name']} | " + " | ".join(_fmt(subs.get(s), ".4f") for s in subset_names) + " |")
    return "\n".join(lines)


MEANINGS = """\
What the numbers mean:
- **NME**: mean point error divided by the inter-ocular distance (outer eye corners), averaged per image; 0.05 means
  the average point is off by 5% of the eye distance. Lower is better.
- **FR@0.10**: the fraction of test faces whose NME is above 0.10 (a failed fit). **AUC@0.10**: the area under the
  cumulative error curve up to 0.10, divided by 0.10 (1.0 would be perfect).
- **stability**: on SynthFace's stability groups (the same face over different backgrounds, lighting and sub-pixel
  shifts), the per-point standard deviation of the predictions divided by the inter-ocular distance. Lower means
  steadier landmarks on video.
- **faces/s**: end to end on one CPU thread with ONNX Runtime, from a full photo and a face box: the affine crop,
  the network, decoding inside the graph, and the points mapped back to the photo.
- **params / KB / GFLOPs**: the model's size (fp32 weights) and compute per face at its input size.
"""


def write_report(out_dir: Path, models: list[dict], claims: list[dict], subset_names: list[str], info: dict,
                 images: dict[str, str]) -> Path:
    """Write report.md and report.html in ``out_dir``; image paths in ``images`` are relative to it."""
    md = ["# distill quickstart report", "",
          f"SynthFace study, budget `{info.get('budget')}`, seed {info.get('seed')}, "
          f"{info.get('num_train')} training / {info.get('num_test')} test faces at {info.get('image_size')} px; "
          f"machine: {info.get('machine')}; total time {info.get('total_minutes', float('nan')):.1f} min.", "",
          "## Results", "", results_table_markdown(models, subset_names), "", MEANINGS, "## The seed's claims", ""]
    for c in claims:
        md.append(f"- {'**holds**' if c['holds'] else '**does not hold**'}: {c['claim']} ({c['numbers']}).")
    md += ["", "## Pictures", ""]
    for title, rel in images.items():
        md += [f"### {title}", "", f"![{title}]({rel})", ""]
    text = "\n".join(md) + "\n"
    md_path = out_dir / "report.md"
    atomic_write_text(md_path, text)
    atomic_write_text(out_dir / "report.html", markdown_to_html(text))
    return md_path


def markdown_to_html(text: str) -> str:
    """Just enough Markdown (headings, tables, bullet lists, images, bold) for the report itself."""
    out, in_table, in_list = [], False, False
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(set(c) <= {"-"} for c in cells):
                continue
            if not in_table:
                out.append("<table>")
                in_table = True
                tag = "th"
            else:
                tag = "td"
            out.append("<tr>" + "".join(f"<{tag}>{_inline(c)}</{tag}>" for c in cells) + "</tr>")
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("- "):
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{_inline(line[2:])}</li>")
            continue
        if line.startswith("  ") and in_list:
            out[-1] = out[-1][:-5] + " " + _inline(line.strip()) + "</li>"
            continue
        if in_list:
            out.append("</ul>")
            in_list = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
        elif line.startswith("!["):
            alt, src = line[2:].split("](", 1)
            out.append(f'<img alt="{html.escape(alt)}" src="{html.escape(src.rstrip(")"))}" style="max-width:100%">')
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    if in_table:
        out.append("</table>")
    if in_list:
        out.append("</ul>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>distill report</title><style>{style}</style>" \
           f"</head><body>{''.join(out)}</body></html>\n"


def _inline(s: str) -> str:
    s = html.escape(s)
    parts = s.split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts)).replace("`", "")
