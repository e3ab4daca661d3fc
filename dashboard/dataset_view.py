"""The dataset view: an evaluation run opened again — its clips, plots, and any clip's views.

``python -m xai_core evaluate`` (either engine) writes a run folder; this page opens one
with :func:`xai_core.evaluation.open_run` (finished, still going or killed half-way):

* a table of the clips (:attr:`~xai_core.evaluation.EvaluationRun.clips`: label,
  prediction, correct, motion shares per method …), sortable by its column headers and
  filtered by class, correct or wrong, and method;
* plots — the motion share per class and accuracy against motion share (one point per
  class, :func:`xai_core.evaluation.class_table`), and the distribution of any metric per
  method (the run's tidy table);
* *Open this clip*: the run's model (:meth:`~xai_core.evaluation.EvaluationRun.load_model`),
  the clip as the run read it (:meth:`~xai_core.evaluation.EvaluationRun.load_clip`) and
  the run's methods, parameters, options and target
  (:meth:`~xai_core.evaluation.EvaluationRun.explain_kwargs`) give ONE explanation request
  (:func:`dashboard.compute.build_tolerant`), computed on the shared job runner
  (:func:`dashboard.compute.obtain`, its own session slot) and shown with the page's own
  views: verdict, side by side (the frame player), relevance per frame, saliency tubes and
  predictions.

The page is chosen by a radio at the top of the sidebar (widget key ``s_page``). While
this page is shown the clip page's widgets are not drawn; their values are kept
(:func:`page_choice`), except an uploaded video, which has to be uploaded again — and the
same for this page's folder, filters and clip while the clip page is shown. Run
folders are typed as a path (relative paths are read under ``$XAI_RUNS_DIR``) or, with
``$XAI_RUNS_DIR`` set, picked from the runs in it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from xai_core.errors import ParameterError
from xai_core.evaluation import EvaluationRun, class_table, open_run
from xai_core.models.registry import LoadedModel

from . import over_time, player, predictions, side_by_side, sidebar_scale, tubes
from . import sidebar as sb
from . import verdict as verdict_view
from .compute import Slot, build_tolerant, obtain, wait_pending
from .display import percent, probability, scales_for, shown_method
from .settings import Settings
from .widget_state import keep_hidden

#: Folder of evaluation runs offered in the sidebar (optional).
RUNS_DIR_ENV = "XAI_RUNS_DIR"
PAGE, FOLDER, PICK, CLIP = "s_page", "ds_folder", "ds_pick", "ds_clip"
PAGES = {"clip": "Explore a clip", "dataset": "Open an evaluation"}
SLOT = Slot("_explanation_ds", " (evaluation clip)")
_OPEN = "_ds_open"  # (folder, clip id) opened in the views
#: The dataset page's widgets, kept while the clip page is shown.
_DATASET_KEYS = (FOLDER, PICK, CLIP, "ds_classes", "ds_correct", "ds_method", "ds_metric",
                 "ds_quantity")
_ALL = "all"


# --------------------------------------------------------------------------- sidebar
def page_choice() -> str:
    """The radio at the top of the sidebar; returns ``clip`` or ``dataset``."""
    if st.session_state.get(PAGE) not in PAGES:
        st.session_state[PAGE] = "clip"
    page = st.radio("Page", list(PAGES), key=PAGE, format_func=PAGES.get, horizontal=True,
                    label_visibility="collapsed")
    clip_keys = [k for k in st.session_state if str(k).startswith(("s_", "p_")) and k != PAGE]
    keep_hidden("page", page, {"clip": clip_keys, "dataset": _DATASET_KEYS})
    return page


def runs_dir() -> Path | None:
    value = os.environ.get(RUNS_DIR_ENV)
    path = Path(value).expanduser() if value else None
    return path if path is not None and path.is_dir() else None


def run_folders(root: Path) -> list[str]:
    """Run folders (holding ``manifest.json``) under ``root``, up to two levels deep."""
    found = [p.parent for p in [*root.glob("*/manifest.json"), *root.glob("*/*/manifest.json")]]
    return sorted(str(p.relative_to(root)) for p in found)


def _picked() -> None:
    st.session_state[FOLDER] = st.session_state.get(PICK) or ""


def folder_input() -> Path | None:
    """The run folder typed or picked in the sidebar (``None`` until one is given)."""
    st.header("Evaluation")
    root = runs_dir()
    runs = run_folders(root) if root is not None else []
    if runs:
        st.selectbox(f"Runs in {root}", [None, *runs], key=PICK, on_change=_picked,
                     format_func=lambda r: "choose a run…" if r is None else r)
    st.text_input("Run folder", key=FOLDER, placeholder="the --out folder of evaluate",
                  help="The folder written by `python -m xai_core evaluate --out FOLDER` "
                       f"(either engine; a run still going opens with the clips done). "
                       f"A relative path is read under ${RUNS_DIR_ENV}.")
    text = str(st.session_state.get(FOLDER) or "").strip()
    if not text:
        return None
    path = Path(text).expanduser()
    return root / path if root is not None and not path.is_absolute() else path


# --------------------------------------------------------------------------- loading
def _signature(folder: Path) -> tuple:
    """What changes when a run moves on: its manifest and its records."""
    stamps = [p.stat().st_mtime_ns for p in (folder / "records").glob("*.json")]
    manifest = folder / "manifest.json"
    return (manifest.stat().st_mtime_ns if manifest.is_file() else 0, len(stamps),
            max(stamps, default=0))


@st.cache_resource(show_spinner=False, max_entries=4)
def _open(folder: str, signature: tuple) -> EvaluationRun:
    return open_run(folder)


@st.cache_resource(show_spinner=False, max_entries=2)
def _model(folder: str, weights_hash: str) -> LoadedModel:
    return open_run(folder).load_model()


# --------------------------------------------------------------------------- page
def render_page(boundary: Callable[[str], Any]) -> None:
    """The whole page: sidebar inputs, the run's table and plots, an opened clip."""
    with st.sidebar:
        folder = folder_input()
        sb.display_inputs()
        sidebar_scale.scale_inputs()
    if folder is None:
        st.info("Type the folder of an evaluation run in the sidebar (the --out folder of "
                "`python -m xai_core evaluate`)" + (f", or pick one of the runs in {runs_dir()}"
                                                    if runs_dir() else "") + ".")
        return
    if not folder.is_dir():
        raise ParameterError(f"{folder} is not a folder", hint="Check the path.")
    run = _open(str(folder), _signature(folder))
    st.header(f"Evaluation: {folder.name}")
    st.caption(f"Model **{run.config.get('model', '?')}** · methods **{', '.join(run.methods)}**"
               f" · {run.done} of {run.total} clips done"
               + (f", **{len(run.failed)} failed**" if run.failed else "")
               + ("" if run.complete else " (the run is not finished: reopen to see more)"))
    if run.clips.empty:
        st.info("No clip of this run is done yet.")
        return
    clips, method = _filters(run)
    _table(clips, run.methods, method)
    _plots(run, clips, method)
    _open_clip(run, clips, folder, boundary)


def _filters(run: EvaluationRun) -> tuple[pd.DataFrame, str]:
    clips = run.clips
    cols = st.columns(3)
    names = sorted(clips["label_name"].dropna().unique().tolist())
    chosen = cols[0].multiselect("Classes", names, key="ds_classes", placeholder="all classes")
    correct = cols[1].radio("Clips", [_ALL, "correct", "wrong"], key="ds_correct",
                            horizontal=True, format_func=lambda c: {_ALL: "all"}.get(c, c))
    method = cols[2].selectbox("Method", run.methods, key="ds_method")
    if chosen:
        clips = clips[clips["label_name"].isin(chosen)]
    if correct != _ALL:
        clips = clips[clips["correct"].eq(correct == "correct")]  # unknown: neither
    return clips, method


def _table(clips: pd.DataFrame, methods: list[str], method: str) -> None:
    other = {f"{kind}:{m}" for kind in ("motion_share", "selective_share") for m in methods
             if m != method}
    shown = clips[[c for c in clips.columns if c not in other]]
    config = {c: st.column_config.NumberColumn(c, format="%.3f") for c in shown.columns
              if c.startswith(("motion_share:", "selective_share:")) or c == "target_probability"}
    st.dataframe(shown, hide_index=True, width="stretch", column_config=config, key="ds_table",
                 on_select=_row_chosen, selection_mode="single-row")
    st.caption(f"{len(shown)} clips. Click a column header to sort, a row to choose the clip "
               "to open below. The motion share is the share of positive relevance that is "
               "temporal (motion); the selective share that of selective relevance.")
    st.session_state["_ds_rows"] = shown["clip_id"].tolist()


def _row_chosen() -> None:
    rows = (st.session_state.get("ds_table") or {}).get("selection", {}).get("rows", [])
    ids = st.session_state.get("_ds_rows", [])
    if rows and rows[0] < len(ids):
        st.session_state[CLIP] = ids[rows[0]]


def _plots(run: EvaluationRun, clips: pd.DataFrame, method: str) -> None:
    share = f"motion_share:{method}"
    left, right = st.columns(2)
    per_class = class_table(clips)
    if share in per_class.columns and not per_class.empty:
        left.plotly_chart(_bar(per_class, share, method), key="ds_share_plot", width="stretch")
        right.plotly_chart(_scatter(per_class, share, method), key="ds_accuracy_plot",
                           width="stretch")
    elif share not in clips.columns:
        left.info("This run did not score the motion share (metric motion_share).")
    table = run.table[run.table["clip_id"].isin(clips["clip_id"])]
    if table.empty:
        return
    cols = st.columns(2)
    metric = cols[0].selectbox("Metric", sorted(table["metric"].unique()), key="ds_metric")
    rows = table[table["metric"] == metric]
    quantity = cols[1].selectbox("Quantity", sorted(rows["quantity"].unique()),
                                 key="ds_quantity")
    st.plotly_chart(_boxes(rows[rows["quantity"] == quantity], metric, quantity),
                    key="ds_metric_plot", width="stretch")


def _layout(title: str, **more: Any) -> dict[str, Any]:
    return {"template": "none", "height": 320, "title": {"text": title},
            "margin": {"l": 60, "r": 10, "t": 40, "b": 60}, **more}


def _bar(per_class: pd.DataFrame, share: str, method: str) -> go.Figure:
    return go.Figure(go.Bar(x=per_class["label_name"], y=per_class[share],
                            customdata=per_class["clips"],
                            hovertemplate="%{x}: %{y:.1%} (%{customdata} clips)<extra></extra>"),
                     _layout(f"Motion share per class ({method}, mean)",
                             yaxis={"tickformat": ".0%", "range": [0, 1]}))


def _scatter(per_class: pd.DataFrame, share: str, method: str) -> go.Figure:
    return go.Figure(go.Scatter(x=per_class[share], y=per_class["accuracy"], mode="markers+text",
                                text=per_class["label_name"], textposition="top center",
                                marker={"size": 10}),
                     _layout(f"Accuracy against motion share ({method}), one point per class",
                             xaxis={"title": {"text": "motion share"}, "tickformat": ".0%"},
                             yaxis={"title": {"text": "accuracy"}, "tickformat": ".0%",
                                    "range": [-0.05, 1.05]}))


def _boxes(rows: pd.DataFrame, metric: str, quantity: str) -> go.Figure:
    traces = [go.Box(x=part["method"], y=part["value"], name=variant or "—", boxpoints="all")
              for variant, part in rows.groupby("variant", sort=False)]
    return go.Figure(traces, _layout(f"{metric}: {quantity}, per method", boxmode="group",
                                     legend={"title": {"text": "map"}}))


# --------------------------------------------------------------------------- one clip
def _open_clip(run: EvaluationRun, clips: pd.DataFrame, folder: Path,
               boundary: Callable[[str], Any]) -> None:
    st.subheader("Open a clip")
    ok = clips[clips["error"].isna()]["clip_id"].tolist() if "error" in clips else []
    if not ok:
        st.info("No clip of this selection can be opened (they failed).")
        return
    if st.session_state.get(CLIP) not in ok:
        st.session_state[CLIP] = ok[0]
    cols = st.columns([3, 1])
    clip_id = cols[0].selectbox("Clip", ok, key=CLIP, label_visibility="collapsed")
    if cols[1].button("Open this clip", type="primary", key="ds_open"):
        st.session_state[_OPEN] = (str(folder), clip_id)
    if st.session_state.get(_OPEN, (None, None))[0] != str(folder):
        return
    clip_id = st.session_state[_OPEN][1]
    with boundary(f"open clip {clip_id} with the run's settings"):
        model = _model(str(folder), str(run.config.get("weights_hash")))
        clip = run.load_clip(clip_id, model)
        kw = run.explain_kwargs(clip_id)
        settings = dataclasses.replace(
            Settings.from_session(), methods=list(kw["methods"]), full_only=[],
            method_params={m: dict(p) for m, p in kw["method_params"].items()},
            options=kw["options"], target=kw["target"],
            shown_method=st.session_state.get("ds_method"))
        request, refused = build_tolerant(settings, model, clip)
        shown = obtain(request, SLOT)
        shown.errors.update(refused)
    expl = shown.explanation
    if expl is None:
        return
    record = run.record(clip_id)
    truth = record.get("label_name")
    settings = dataclasses.replace(settings, shown_method=shown_method(expl, settings))
    with boundary("show the clip's explanation"):
        verdict_view.render_view(expl, settings, truth)
        share = expl[settings.shown_method].motion_share.get("discriminative")
        st.caption(f"Clip **{clip_id}** — ground truth **{truth or 'unknown'}**, the model "
                   f"predicts **{expl.class_names[expl.predicted]}** "
                   f"({probability(expl.probabilities[expl.predicted])}), explaining "
                   f"**{expl.target_name}**; motion share ({settings.shown_method}) "
                   f"{percent(share)}. Methods, parameters and options are the run's.")
        scales = scales_for(expl, settings)
        groups = [player.Group(expl, scales, "", shown.errors)]
        st.fragment(_frame_views)(expl, settings, groups,
                                  player.clip_fps(clip.fps, clip.stride), boundary)
        st.subheader("Saliency tubes")
        tubes.render_view(expl, settings, scales)
        st.subheader("Predictions")
        predictions.render_view(expl)
    wait_pending([shown])


def _frame_views(expl, settings: Settings, groups, fps: float,
                 boundary: Callable[[str], Any]) -> None:
    """The player and the per-frame plot (re-run alone when the player syncs its frame)."""
    with contextlib.suppress(Exception), boundary("draw the frame views"):
        st.subheader("Side by side")
        t = side_by_side.render_view(expl, settings, groups, fps)
        st.subheader("Relevance per frame")
        over_time.render_view(expl, settings.shown_method, t)
