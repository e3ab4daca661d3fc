"""Selective relevance without false motion: the paper's variant against border-aware ones.

For both bundled models and every gradient / LRP / CAM method, on clips of the synthetic
world (ground-truth actor masks) and on static clips (one frame repeated), each clip is
explained once with the freeze-frame split (Hiley et al. 2019) and every selective
variant of :mod:`xai_core.selective` is applied to that same explanation, so the variants
are compared on paired data:

* **static clips**: voxels in the mask and the share of positive relevance it keeps
  (must be 0: nothing moves);
* **moving clips**: motion precision of the selective map against optical flow (Hiley
  et al. 2020, §4.3.1: Σ(S>0)·(|flow|>0.5) / Σ(S>0)), the share of its positive mass on
  the moving actor, the share of the full map's positive mass it keeps, and the share
  of its positive mass in the first and last three frames.

Records go to ``OUT/records-<model>.jsonl``, one line per (model, clip, method), so a
killed run resumes and the models can run in parallel (the summary reads every file);
``OUT/summary.md`` holds the tables (paired differences to ``hiley2020`` with standard
errors over clips). Command of the recorded run (docs/evaluation.md)::

    for m in motion context-biased; do
        nohup .venv/bin/python benchmarks/bench_selective.py --models $m --clips 24 \\
            --static 16 --out runs/bench/selective > runs/bench/selective-$m.log 2>&1 &
    done
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from xai_core.decompose import DecompositionOptions, discriminative, selective_for
from xai_core.evaluation import clip_masks, synthetic_items
from xai_core.methods.base import get_method
from xai_core.metrics.motion import flow_magnitude, motion_precision
from xai_core.models.registry import load_model
from xai_core.predict import class_probabilities
from xai_core.selective import DEFAULT_SELECTIVE, selective_variants
from xai_core.video.clip import load_clip

METHODS = ("gradient", "input-x-gradient", "integrated-gradients", "smoothgrad",
           "guided-backprop", "dtd", "lrp-epsilon", "lrp-epsilon-gamma-box", "gradcam",
           "saliency-tubes", "guided-gradcam")
#: Cheaper settings of the two many-pass methods (the split multiplies them by 17).
PARAMS = {"integrated-gradients": {"steps": 8}, "smoothgrad": {"samples": 4}}
#: Records written before ``still-gated`` was registered computed it in the bench under
#: this name (the same definition: the still-corrected mask & the input-change mask).
LEGACY = {"still-corrected+gate": "still-gated"}
SEED = 710_000_000
EDGE = 3


def _scores(full: np.ndarray, sel: np.ndarray, mask: np.ndarray, flow: np.ndarray | None,
            actor: np.ndarray | None) -> dict[str, float]:
    pos_full = np.clip(full, 0, None).sum()
    pos = np.clip(sel, 0, None)
    mass = float(pos.sum())
    out = {"voxels": int(mask.sum()),
           "kept": float(mass / pos_full) if pos_full > 0 else float("nan")}
    if flow is not None:
        out["precision"] = motion_precision(sel, flow)
        out["actor"] = float(pos[actor].sum() / mass) if mass > 0 else float("nan")
        out["edge"] = float((pos[:EDGE].sum() + pos[-EDGE:].sum()) / mass) if mass > 0 \
            else np.nan
    return out


def _clip_records(model, name, kind, seed, frames, masks, methods, done, opts) -> list[dict]:
    if all((name, kind, seed, m) in done for m in methods):
        return []
    clip = load_clip(frames, model.input, name=f"{kind}-{seed}")
    x = torch.as_tensor(clip.tensor).to(torch.float32)
    x = x.unsqueeze(0) if x.ndim == 4 else x
    target = int(torch.argmax(class_probabilities(model, x)[0]))
    flow = actor = None
    if kind == "moving":
        flow = flow_magnitude(clip.frames)
        actor = clip_masks(masks, clip.indices, model.input)["actor"]
    out = []
    for m in methods:
        if (name, kind, seed, m) in done:
            continue
        method = get_method(m, **PARAMS.get(m, {}))
        tic = time.perf_counter()
        full = method.attribute(model, x, target).relevance[0]
        split = discriminative(method, model, x, target, full, opts)
        seconds = time.perf_counter() - tic
        rec = {"model": name, "kind": kind, "seed": seed, "method": m, "target": target,
               "seconds": seconds, "variants": {}}
        for v in selective_variants():
            sel, mask = selective_for(dataclasses.replace(opts, selective=v), split.full, x,
                                      split)
            rec["variants"][v] = _scores(split.full.numpy(), sel.numpy(), mask.numpy(),
                                         flow, actor)
        out.append(rec)
    return out


def _table(records: list[dict]) -> pd.DataFrame:
    rows = []
    for r in records:
        for v, s in r["variants"].items():
            rows.append({"model": r["model"], "kind": r["kind"], "seed": r["seed"],
                         "method": r["method"], "variant": LEGACY.get(v, v), **s})
    return pd.DataFrame(rows)


def _mse(values: pd.Series) -> str:
    v = values.dropna()
    if len(v) == 0:
        return "–"
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return f"{v.mean():.3f} ± {se:.3f}"


def summarise(df: pd.DataFrame, variants: list[str]) -> str:
    """Markdown tables: static emptiness, then per model × method the moving-clip metrics
    (mean ± standard error over clips) and paired differences to ``hiley2020``."""
    lines = []
    st = df[df.kind == "static"]
    if not st.empty:
        n = st.groupby("model").seed.nunique().to_dict()
        lines += ["### Static clips (one frame repeated)", "",
                  f"Clips per model: {n}. Cell: clips with a non-empty mask / clips; mean share "
                  "of the positive relevance kept (± standard error).", "",
                  "| model | method | " + " | ".join(variants) + " |",
                  "|---|---|" + "---|" * len(variants)]
        for (model, method), g in st.groupby(["model", "method"], sort=False):
            cells = []
            for v in variants:
                gv = g[g.variant == v]
                cells.append(f"{int((gv.voxels > 0).sum())}/{len(gv)}; {_mse(gv.kept)}")
            lines.append(f"| {model} | {method} | " + " | ".join(cells) + " |")
        lines.append("")
    mv = df[df.kind == "moving"]
    for metric, title in (("precision", "Motion precision against optical flow"),
                          ("actor", "Share of the selective positive mass on the moving actor"),
                          ("kept", "Share of the full map's positive mass kept"),
                          ("edge", f"Share of the selective positive mass in the first and "
                                   f"last {EDGE} frames")):
        if mv.empty:
            break
        lines += [f"### {title}", "",
                  "Mean ± standard error over clips (n = clips with a non-empty selective "
                  "map); Δ = paired difference to hiley2020 over the clips where both are "
                  "defined.", "",
                  "| model | method | n | hiley2020 | " +
                  " | ".join(f"{v} (Δ)" for v in variants if v != "hiley2020") + " |",
                  "|---|---|---|---|" + "---|" * (len(variants) - 1)]
        groups = list(mv.groupby(["model", "method"], sort=False))
        for model in mv.model.unique():
            groups.append(((model, "**all methods**"), mv[mv.model == model]))
        for (model, method), g in groups:
            wide = g.pivot_table(index=["seed", "method"], columns="variant", values=metric,
                                 aggfunc="first")
            if method == "**all methods**":  # clips are the independent unit
                wide = wide.groupby(level="seed").mean()
            base = wide["hiley2020"]
            cells = []
            for v in variants:
                if v == "hiley2020":
                    continue
                d = (wide[v] - base).dropna()
                cells.append(f"{_mse(wide[v])} ({_mse(d)})")
            lines.append(f"| {model} | {method} | {len(wide)} | {_mse(base)} | "
                         + " | ".join(cells) + " |")
        lines.append("")
    if not mv.empty:
        lines += _pooled(mv, variants)
    return "\n".join(lines)


def _per_clip(g: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per measure: clips × variants, each the mean over methods (paired comparisons)."""
    return {m: g.pivot_table(index=["seed", "method"], columns="variant", values=m,
                             aggfunc="first").groupby(level="seed").mean()
            for m in ("precision", "actor", "kept")}


def _pooled(mv: pd.DataFrame, variants: list[str]) -> list[str]:
    """Per model, pooled over methods: each variant against the default, paired over clips,
    and how many clip × method maps each variant leaves empty."""
    lines = [f"### Pooled over methods: paired difference to the default ({DEFAULT_SELECTIVE})",
             "", "Mean over methods per clip, then mean ± standard error over clips; "
             "empty = clip × method maps with no selected voxel.", "",
             "| model | variant | empty | Δ motion precision | Δ actor share | Δ kept |",
             "|---|---|---|---|---|---|"]
    for model in mv.model.unique():
        g = mv[mv.model == model]
        wide = _per_clip(g)
        for v in variants:
            empty = int((g[g.variant == v].voxels == 0).sum())
            total = int((g.variant == v).sum())
            cells = [_mse((w[v] - w[DEFAULT_SELECTIVE]).dropna()) for w in wide.values()]
            lines.append(f"| {model} | {v} | {empty}/{total} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def compact(df: pd.DataFrame, variants: list[str], base: str = "hiley2020") -> str:
    """The tables of docs/evaluation.md: static clips, the default against the paper's per
    method, and every variant pooled over methods."""
    new = DEFAULT_SELECTIVE
    st, mv = df[df.kind == "static"], df[df.kind == "moving"]
    lines = ["| model | method | static clips: hiley2020 non-empty, share kept | every other "
             "variant | moving clips | motion precision: hiley2020 → " + new + " (Δ) | actor "
             "share: hiley2020 → " + new + " (Δ) |", "|---|---|---|---|---|---|---|"]
    for (model, method), g in mv.groupby(["model", "method"], sort=False):
        s = st[(st.model == model) & (st.method == method)]
        sb, others = s[s.variant == base], s[s.variant != base]
        cells = [f"{int((sb.voxels > 0).sum())}/{len(sb)}, {_mse(sb.kept)}",
                 f"{int((others.voxels > 0).sum())}/{len(others)} non-empty",
                 str(g.seed.nunique())]
        for metric in ("precision", "actor"):
            w = g.pivot_table(index="seed", columns="variant", values=metric, aggfunc="first")
            cells.append(f"{w[base].mean():.3f} → {w[new].mean():.3f} "
                         f"({_mse((w[new] - w[base]).dropna())})")
        lines.append(f"| {model} | {method} | " + " | ".join(cells) + " |")
    lines += ["", "| model | variant | motion precision | Δ to hiley2020 | actor share | "
              "Δ to hiley2020 | share kept | empty maps |", "|---|---|---|---|---|---|---|---|"]
    for model in mv.model.unique():
        g = mv[mv.model == model]
        wide = _per_clip(g)
        for v in variants:
            p, a, k = (wide[m][v] for m in ("precision", "actor", "kept"))
            empty = f"{int((g[g.variant == v].voxels == 0).sum())}/{int((g.variant == v).sum())}"
            dp = _mse((p - wide["precision"][base]).dropna())
            da = _mse((a - wide["actor"][base]).dropna())
            lines.append(f"| {model} | {v} | {_mse(p)} | {dp} | {_mse(a)} | {da} | {_mse(k)} "
                         f"| {empty} |")
    return "\n".join(lines)


def _read(out: Path) -> list[dict]:
    """Every record in ``OUT/records-*.jsonl`` (a torn last line of a killed run skipped)."""
    records = []
    for path in sorted(out.glob("records-*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["motion", "context-biased"])
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--clips", type=int, default=24, help="moving clips per model")
    ap.add_argument("--static", type=int, default=16, help="static clips per model")
    ap.add_argument("--context-rate", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/bench/selective")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = _read(out)
    done = {(r["model"], r["kind"], r["seed"], r["method"]) for r in records}
    opts = DecompositionOptions()
    moving = synthetic_items(args.clips, args.context_rate, seed=SEED)
    static = synthetic_items(args.static, args.context_rate, seed=SEED + 500_000)
    start = time.time()
    for name in args.models:
        model = load_model(name)
        path = out / f"records-{name}.jsonl"  # one file per model: models may run in parallel
        jobs = [("static", it.meta["seed"], np.repeat(it.source[:1], len(it.source), 0), None)
                for it in static]
        jobs += [("moving", it.meta["seed"], it.source, it.masks) for it in moving]
        for kind, seed, frames, masks in jobs:
            new = _clip_records(model, name, kind, seed, frames, masks, args.methods, done,
                                opts)
            with path.open("a") as f:
                for r in new:
                    f.write(json.dumps(r) + "\n")
            records += new
            if new:
                secs = sum(r["seconds"] for r in new)
                print(f"{time.time() - start:7.0f}s {name} {kind} {seed}: {len(new)} methods, "
                      f"{secs:.1f} s", flush=True)
    variants = list(selective_variants())
    table = _table(_read(out))
    text = summarise(table, variants)
    (out / "summary.md").write_text(text + "\n")
    (out / "compact.md").write_text(compact(table, variants) + "\n")
    print(text)


if __name__ == "__main__":
    main()
