"""Which attribution method works on which family of video networks, and why not.

Every method either works on a model or refuses up front with its reason (its
``Method.check`` raises :class:`~xai_core.errors.MethodError`). This module states the
outcome per family, for ``python -m xai_core methods --applicability`` and the README;
``tests/test_applicability.py`` runs every method on a model of every family and checks
that each cell says what really happens (that refusals are raised by ``check`` with the
reason's key words, and that everything else computes finite relevance).

Nothing heavy is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CAVEATS", "COLUMNS", "REFUSED", "Column", "cell", "markdown_table", "text_table"]


@dataclass(frozen=True)
class Column:
    """A family of networks: key, heading, and the models it stands for."""

    key: str
    title: str
    models: str
    transformer: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("small-c3d", "small C3D", "small-c3d, motion, context-biased"),
    Column("c3d", "C3D", "c3d"),
    Column("video-resnet", "R3D/MC3/R(2+1)D", "r3d_18, mc3_18, r2plus1d_18"),
    Column("s3d", "S3D", "s3d"),
    Column("swin3d", "Swin3D", "swin3d_t, swin3d_s, swin3d_b", True),
    Column("mvit", "MViT", "mvit_v1_b, mvit_v2_s", True),
    Column("videomae", "VideoMAE", "--hf (Hugging Face)", True),
    Column("timesformer", "TimeSformer", "--hf (Hugging Face)", True),
    Column("vivit", "ViViT", "--hf (Hugging Face)", True),
)

_CNNS = tuple(c.key for c in COLUMNS if not c.transformer)
_TRANSFORMERS = tuple(c.key for c in COLUMNS if c.transformer)

#: Short reasons; the refusal message of each method contains the words in brackets.
_ZENNIT = ("zennit's CNN rules would not conserve relevance through attention/LayerNorm "
           "[transformer]")
_NO_ATTENTION = "no attention: the rules reduce to input × gradient; use dtd [no attention]"
_GELU = "GELU, not ReLU: would be the plain gradient [ReLU networks]"
_HEAD = "not a global pool + linear head [global-pool + linear head]"

#: method → {family: reason it refuses}; a family not named: the method works.
REFUSED: dict[str, dict[str, str]] = {
    "dtd": dict.fromkeys(_TRANSFORMERS, _ZENNIT),
    "lrp-epsilon": dict.fromkeys(_TRANSFORMERS, _ZENNIT),
    "lrp-epsilon-gamma-box": dict.fromkeys(_TRANSFORMERS, _ZENNIT),
    "attn-lrp": dict.fromkeys(_CNNS, _NO_ATTENTION),
    "guided-gradcam": dict.fromkeys(_TRANSFORMERS, _GELU),
    "guided-backprop": dict.fromkeys(_TRANSFORMERS, _GELU),
    "saliency-tubes": {
        "c3d": "flatten + fc head, " + _HEAD,
        "s3d": "1×1×1 conv head, " + _HEAD,
        "mvit": "class-token head, " + _HEAD,
        "videomae": "LayerNorm between pool and classifier, " + _HEAD,
        "timesformer": "class-token head, " + _HEAD,
        "vivit": "class-token head, " + _HEAD,
    },
}

#: method → {family: note}: the method runs, but the result needs this caveat.
CAVEATS: dict[str, dict[str, str]] = {}


def cell(method: str, family: str) -> tuple[str, str]:
    """``("works" | "refused" | "caveat", text)`` for one method on one family."""
    if family in REFUSED.get(method, {}):
        return "refused", REFUSED[method][family]
    if family in CAVEATS.get(method, {}):
        return "caveat", CAVEATS[method][family]
    return "works", ""


def _short(reason: str) -> str:
    return reason.split(" [")[0]


def _mark(method: str, family: str) -> str:
    kind, text = cell(method, family)
    return {"works": "✓", "refused": "✗", "caveat": "⚠"}[kind]


def markdown_table(methods: list[str]) -> str:
    """The table as Markdown (README): ✓ works, ✗ refused, ⚠ runs with a caveat; the
    reasons follow the table."""
    head = "| method | " + " | ".join(c.title for c in COLUMNS) + " |"
    rule = "|---|" + "---|" * len(COLUMNS)
    rows = [f"| `{m}` | " + " | ".join(_mark(m, c.key) for c in COLUMNS) + " |" for m in methods]
    notes = []
    for m in methods:
        for kind, table in (("✗", REFUSED), ("⚠", CAVEATS)):
            groups: dict[str, list[str]] = {}
            for c in COLUMNS:
                if c.key in table.get(m, {}):
                    groups.setdefault(_short(table[m][c.key]), []).append(c.title)
            notes += [f"* {kind} `{m}` on {', '.join(fams)}: {why}."
                      for why, fams in groups.items()]
    return "\n".join([head, rule, *rows, "", *notes])


def text_table(methods: list[str]) -> str:
    """The table for a terminal: one row per method, one column per family, then reasons."""
    width = max(len(m) for m in methods)
    cols = [c.title for c in COLUMNS]
    lines = [" " * width + "  " + "  ".join(cols)]
    for m in methods:
        marks = [_mark(m, c.key).center(len(t)) for c, t in zip(COLUMNS, cols, strict=True)]
        lines.append(f"{m:<{width}}  " + "  ".join(marks).rstrip())
    lines.append("")
    lines.append("✓ works   ✗ refused up front (Method.check)   ⚠ runs, with a caveat")
    lines += [line for line in markdown_table(methods).splitlines() if line.startswith("* ")]
    lines.append("Families: " + "; ".join(f"{c.title} = {c.models}" for c in COLUMNS) + ".")
    return "\n".join(lines)
