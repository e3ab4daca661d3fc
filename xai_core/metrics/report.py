"""The evaluation report: the papers' tables (mean ± std) and Plotly figures.

Sections follow Hiley et al. 2020 (Table 1 motion precision, Table 2 agreement, Table 3
selectivity, Table 4 overhead) and Li et al. 2021 (Table 2: pointing game, insertion,
deletion, S50, S75, with a random-map row), plus what only the synthetic world allows
(ground-truth localisation) and the model's motion share. ``report.md`` holds the tables,
``report.html`` the tables and interactive figures (plotly.js embedded once, so the file
works offline); PNG copies are written only when Plotly's static export (kaleido) works.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import write_text
from .base import METRICS
from .motion import summarise_motion_share


@dataclass(frozen=True)
class Section:
    title: str
    source: str
    columns: tuple[tuple[str, str], ...]  # (metric, quantity)
    note: str = ""


SECTIONS: tuple[Section, ...] = (
    Section("Motion precision", "Hiley et al. 2020, Table 1",
            (("motion_precision", "motion_precision"),
             ("motion_precision", "motion_precision_top")),
            "Share of positively relevant voxels where optical flow moves (the paper's "
            "definition), and of each map's top 5 % voxels (a fixed area budget: dense maps "
            "are positive almost everywhere). The `random` row is the chance level: the "
            "share of moving voxels."),
    Section("Selectivity", "Hiley et al. 2020, Table 3",
            (("selectivity", "area_ratio"), ("selectivity", "mass_ratio")),
            "Selective map vs its full map: share of positive voxels kept (area) and of "
            "positive relevance kept (mass)."),
    Section("Agreement between methods", "Hiley et al. 2020, Table 2",
            (("agreement", "iou"), ("agreement", "dice"), ("agreement", "iou_top"),
             ("agreement", "dice_top")),
            "Overlap of the positively relevant voxels of two methods, and of their top 5 % "
            "voxels."),
    Section("Overhead", "Hiley et al. 2020, Table 4",
            (("overhead", "time_full_ms"), ("overhead", "time_freeze_frames_ms"),
             ("overhead", "time_selective_ms")),
            "Milliseconds per clip on this machine: the method, the freeze-frame split, the "
            "selective step."),
    Section("Causal and saliency metrics", "Li et al. 2021, Table 2",
            (("pointing_game", "pointing_spatial"), ("insertion", "insertion_auc"),
             ("deletion", "deletion_auc"), ("saliency_metric", "sm50"),
             ("saliency_metric", "sm75")),
            "PG: spatial pointing game on the actor mask; CI/CD: insertion/deletion AUC; "
            "S50/S75: saliency metric. The `random` row is a seeded random map on the same "
            "clips."),
    Section("Temporal pointing game", "Li et al. 2021, T-PT",
            (("temporal_pointing_game", "pointing_temporal"),)),
    Section("Ground-truth localisation", "synthetic world (pixel-exact masks)",
            (("ground_truth", "actor_share"), ("ground_truth", "actor_lift"),
             ("ground_truth", "context_share"), ("ground_truth", "context_lift")),
            "Share of positive relevance on the actor (motion evidence) and on the context "
            "object (static evidence); lift = share / the mask's share of the volume "
            "(1 = uniform map)."),
    Section("Motion share",
            "discriminative (Hiley et al. 2019) and selective (Hiley et al. 2020) splits",
            (("motion_share", "motion_share_discriminative"),
             ("motion_share", "motion_share_selective"))),
    Section("Sanity check (cascading randomisation)", "Adebayo et al. 2018",
            (("sanity", "spearman_top"), ("sanity", "spearman_mean"),
             ("sanity", "spearman_all")),
            "Spearman correlation with the trained model's map; a faithful method falls "
            "towards 0."),
)

_SHORT = {"pointing_spatial": "PG", "insertion_auc": "CI", "deletion_auc": "CD",
          "sm50": "S50", "sm75": "S75"}


def _direction(metric: str) -> bool | None:
    cls = METRICS.get(metric)
    return None if cls is None else cls.higher_is_better


def _header(quantity: str, direction: Any) -> str:
    arrow = {True: " ↑", False: " ↓"}.get(direction, "")
    return _SHORT.get(quantity, quantity) + arrow


def _fmt(mean: float, std: float, n: int, quantity: str) -> str:
    if n == 0 or not np.isfinite(mean):
        return "–"
    digits = 1 if quantity.endswith("_ms") else 3
    if n == 1 or not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def section_table(summary: pd.DataFrame, section: Section) -> pd.DataFrame | None:
    """Rows: method (and variant); columns: the section's quantities as 'mean ± std'."""
    keys = set(section.columns)
    sub = summary[[(m, q) in keys for m, q in zip(summary["metric"], summary["quantity"],
                                                  strict=True)]]
    if sub.empty:
        return None
    order = list(dict.fromkeys(zip(sub["method"], sub["variant"], strict=True)))
    order.sort(key=lambda mv: mv[0] == "random")  # the baseline row last, as the papers
    rows = []
    for method, variant in order:
        row = {"method": method, "variant": variant or "–"}
        for metric, quantity in section.columns:
            hit = sub[(sub["method"] == method) & (sub["variant"] == variant)
                      & (sub["metric"] == metric) & (sub["quantity"] == quantity)]
            col = _header(quantity, _direction(metric))
            row[col] = (_fmt(hit["mean"].iloc[0], hit["std"].iloc[0], int(hit["n"].iloc[0]),
                             quantity) if len(hit) else "–")
        rows.append(row)
    table = pd.DataFrame(rows)
    value_cols = [c for c in table.columns if c not in ("method", "variant")]
    table = table[~(table[value_cols] == "–").all(axis=1)]
    return table if not table.empty else None


def markdown_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(str(r[c]).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines)


def overview(table: pd.DataFrame, records: list[dict[str, Any]], config: dict[str, Any]
             ) -> list[tuple[str, str]]:
    """(label, value) lines describing the run."""
    n = len(records)
    labelled = [r for r in records if r.get("correct") is not None]
    lines = [("model", f"{config.get('model')} (weights {str(config.get('weights_hash'))[:12]})"),
             ("clips", str(n)),
             ("source", config.get("source") or "–"),
             ("methods", ", ".join(m.get("method", "?") for m in config.get("methods", []))),
             ("explained class", config.get("target", "predicted")),
             ("decomposition", json.dumps(config.get("options", {}), sort_keys=True))]
    if labelled:
        acc = np.mean([bool(r["correct"]) for r in labelled])
        lines.append(("accuracy", f"{acc:.3f} ({sum(r['correct'] for r in labelled)}/"
                                  f"{len(labelled)})"))
    agree = [r for r in records if "context_agrees" in r.get("meta", {})]
    if agree:
        follows = [r for r in agree if r["predicted"] == r["meta"].get("context")]
        lines.append(("predicted the context's class",
                      f"{len(follows)}/{len(agree)} clips "
                      f"({sum(r['meta']['context_agrees'] for r in agree)} with agreeing "
                      "context)"))
    skipped: dict[str, int] = {}
    for r in records:
        for metric, why in r.get("skipped", {}).items():
            skipped[f"{metric} ({why})"] = skipped.get(f"{metric} ({why})", 0) + 1
    for what, count in skipped.items():
        lines.append(("skipped", f"{what}: {count} clips"))
    return lines


def motion_share_model(table: pd.DataFrame) -> pd.DataFrame | None:
    """Per method: the model's motion share over clips and its spatial-bias score."""
    sub = table[table["metric"] == "motion_share"] if not table.empty else table
    if sub.empty:
        return None
    rows = []
    for (method, quantity), g in sub.groupby(["method", "quantity"], sort=False):
        s = summarise_motion_share(g["value"].to_numpy(float))
        rows.append({"method": method, "split": quantity.replace("motion_share_", ""),
                     "motion share": _fmt(s["mean"], s["std"], s["n"], quantity),
                     "median": f"{s['median']:.3f}" if s["n"] else "–",
                     "spatial bias (1 − mean)": f"{s['spatial_bias']:.3f}" if s["n"] else "–",
                     "clips": s["n"]})
    return pd.DataFrame(rows)


def mean_curves(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Long table of the mean insertion/deletion curves over clips."""
    acc: dict[str, list[list[float]]] = {}
    for r in records:
        for key, curve in r.get("curves", {}).items():
            acc.setdefault(key, []).append(curve)
    rows = []
    for key, curves in acc.items():
        lengths = {len(c) for c in curves}
        if len(lengths) != 1:
            continue
        metric, method, variant = key.split("|")
        mean = np.nanmean(np.array(curves, dtype=float), axis=0)
        for i, p in enumerate(mean):
            rows.append({"metric": metric, "series": f"{method} {variant}".strip(),
                         "fraction": i / (len(mean) - 1), "probability": p})
    return pd.DataFrame(rows)


def figures(summary: pd.DataFrame, table: pd.DataFrame, records: list[dict[str, Any]]
            ) -> list[tuple[str, Any]]:
    """(name, plotly figure) pairs."""
    import plotly.express as px

    figs = []
    for section in SECTIONS:
        keys = set(section.columns)
        sub = summary[[(m, q) in keys for m, q in zip(summary["metric"], summary["quantity"],
                                                      strict=True)]].copy()
        sub = sub[sub["n"] > 0]
        if sub.empty:
            continue
        sub["series"] = (sub["method"] + " " + sub["variant"].fillna("")).str.strip()
        fig = px.bar(sub, x="series", y="mean", error_y="std", facet_col="quantity",
                     color="variant", title=f"{section.title} ({section.source}), mean ± std")
        fig.update_yaxes(matches=None, showticklabels=True)
        fig.update_xaxes(matches=None, title=None)
        figs.append((_slug(section.title), fig))
    curves = mean_curves(records)
    if not curves.empty:
        fig = px.line(curves, x="fraction", y="probability", color="series", facet_col="metric",
                      title="Mean insertion and deletion curves (target probability)")
        figs.append(("curves", fig))
    ms = table[table["metric"] == "motion_share"] if not table.empty else table
    if not ms.empty:
        fig = px.box(ms, x="method", y="value", color="quantity", points="all",
                     title="Motion share per clip")
        figs.append(("motion-share", fig))
    return figs


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def write_report(out: Path, table: pd.DataFrame, summary: pd.DataFrame,
                 records: list[dict[str, Any]], config: dict[str, Any]
                 ) -> tuple[dict[str, Path], list[str]]:
    """Write report.md and report.html, each atomically (PNGs too when kaleido works).

    Returns the files written (name → path) and notes on what was not written.
    """
    files: dict[str, Path] = {}
    notes: list[str] = []
    info = overview(table, records, config)
    tables = [(s, section_table(summary, s)) for s in SECTIONS]
    tables = [(s, t) for s, t in tables if t is not None]
    share = motion_share_model(table)

    md = ["# Evaluation report", ""]
    md += [f"- **{k}**: {v}" for k, v in info]
    for s, t in tables:
        md += ["", f"## {s.title} ({s.source})", ""]
        if s.note:
            md += [s.note, ""]
        md.append(markdown_table(t))
    if share is not None:
        md += ["", "## The model's motion share over clips", "", markdown_table(share)]
    files["report.md"] = out / "report.md"
    write_text(files["report.md"], "\n".join(md) + "\n")

    figs = figures(summary, table, records)
    body = ["<h1>Evaluation report</h1>", "<ul>"]
    body += [f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in info]
    body.append("</ul>")
    for s, t in tables:
        body.append(f"<h2>{html.escape(s.title)} <small>({html.escape(s.source)})</small></h2>")
        if s.note:
            body.append(f"<p>{html.escape(s.note)}</p>")
        body.append(t.to_html(index=False, border=0, classes="results"))
    if share is not None:
        body.append("<h2>The model's motion share over clips</h2>")
        body.append(share.to_html(index=False, border=0, classes="results"))
    body.append("<h2>Figures</h2>")
    for i, (_, fig) in enumerate(figs):
        body.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
    style = ("body{font-family:sans-serif;max-width:1200px;margin:auto}"
             "table.results{border-collapse:collapse}"
             "table.results td,table.results th{padding:3px 10px;border-bottom:1px solid #ddd}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Evaluation report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")
    files["report.html"] = out / "report.html"
    write_text(files["report.html"], page)

    png_note = _write_pngs(out, figs, files)
    if png_note:
        notes.append(png_note)
    return files, notes


def _write_pngs(out: Path, figs: list[tuple[str, Any]], files: dict[str, Path]) -> str:
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return "PNG figures not written: Plotly's static export needs kaleido (not installed)"
    try:
        for name, fig in figs:
            path = out / f"fig-{name}.png"
            fig.write_image(path)
            files[path.name] = path
    except Exception as exc:  # kaleido present but no working Chromium
        return f"PNG figures not written: Plotly static export failed ({str(exc)[:120]})"
    return ""
