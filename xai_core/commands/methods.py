"""``methods``: the attribution methods, one line each.

Example::

    python -m xai_core methods
    python -m xai_core methods --json
    python -m xai_core methods --applicability   # which method works on which network
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..applicability import COLUMNS, cell, text_table
from ..methods.base import Method, list_methods
from ._shared import command_parser


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = command_parser(
        sub, "methods", help="list the attribution methods",
        description="List the attribution methods `explain --method` accepts, with their "
                    "family, a description and their parameters (set with --param "
                    "METHOD:KEY=VALUE).")
    p.add_argument("--json", action="store_true",
                   help="print a JSON list with each parameter's default, range and help")
    p.add_argument("--applicability", action="store_true",
                   help="a table of which method works on which family of networks (CNNs, "
                        "video transformers) and why the others refuse")
    return p


def describe(cls: type[Method]) -> dict[str, Any]:
    """The facts shown for one method (also the ``--json`` form)."""
    params = {}
    for key, p in cls.params.items():
        default = list(p.default) if isinstance(p.default, tuple) else p.default
        params[key] = {"default": default, "help": p.help, "low": p.low, "high": p.high,
                       "choices": list(p.choices) if p.choices else None}
    applies = {}
    for column in COLUMNS:
        kind, text = cell(cls.name, column.key)
        applies[column.key] = kind if kind == "works" else f"{kind}: {text.split(' [')[0]}"
    return {"name": cls.name, "family": cls.family, "description": cls.description,
            "reference": cls.reference, "params": params, "applies_to": applies}


def _param_text(d: dict[str, Any]) -> str:
    parts = []
    for key, p in d["params"].items():
        v = p["default"]
        v = ",".join(str(x) for x in v) if isinstance(v, list) else v
        parts.append(f"{key}={v}")
    return " ".join(parts) or "-"


def run(args: argparse.Namespace) -> int:
    rows = [describe(c) for c in sorted(list_methods(), key=lambda c: (c.family, c.name))]
    if args.applicability and not args.json:
        print(text_table([r["name"] for r in rows]))
        return 0
    if args.json:
        print(json.dumps(rows))
        return 0
    wn = max(len(r["name"]) for r in rows)
    wf = max(len(r["family"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{wn}}  {r['family']:<{wf}}  {r['description']}  "
              f"[{_param_text(r)}]")
    return 0
