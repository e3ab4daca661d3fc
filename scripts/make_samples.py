"""Render the sample clips of ``sample_videos/`` from the synthetic world.

Deterministic: every clip comes from a fixed seed. Per clip ``<name>.mp4`` (H.264
yuv420p, browser-playable), ``<name>.masks.npz`` (exact actor / context masks) and one
``manifest.json``. When the bundled weights exist, each model's top prediction on the
*decoded* mp4 (what a user loads) is recorded too, so the samples document what they show.

Usage::

    python scripts/make_samples.py [--out sample_videos] [--no-predictions]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xai_core.synthetic.samples import SAMPLES_DIR  # noqa: E402
from xai_core.synthetic.world import (  # noqa: E402
    CLASSES,
    CONTEXT_KINDS,
    SyntheticClip,
    WorldConfig,
    render_clip,
    static_clip,
)
from xai_core.video.write import write_video  # noqa: E402

FPS = 8.0
SEED_BASE = 5_000  # far from the training (10 M+) and held-out (900 M+) seed ranges
BOTH = ("motion", "context-biased")

#: Samples are showcases: each clip's seed is the first of its block (SEED_BASE + 100·(k+1))
#: that the bundled motion model classifies correctly with p ≥ 0.6, so a wrong prediction
#: does not muddle the demonstration. Only these needed to skip seeds (found with the
#: weights of the first training run; the manifest records the predictions actually seen).
#: Evaluations use fresh random seeds, never these.
SEED_SKIP = {"rotate_cw": 2, "conflict_rotate_cw": 1}


def cls(name: str) -> int:
    return CLASSES.index(name)


def plan() -> list[dict]:
    """What to render: name, kind, label, context, seed, config, suits.

    Label and context are always explicit (except for the still, which is
    ``static_clip(seed)``), so every clip renders again from its manifest entry alone.
    """
    items = []
    rng = np.random.default_rng(SEED_BASE)
    for i, label in enumerate(CLASSES):
        # "Independent of class": a context kind drawn at random among the other classes'
        # kinds, so none of these clips happens to agree with its class.
        others = [k for k in range(len(CONTEXT_KINDS)) if k != i]
        items.append(dict(name=label, kind="motion", label=i, context=int(rng.choice(others)),
                          suits=("motion",),
                          description=f"{label} with an unrelated context object"))
    for label, ctx in (("move_left", "move_right"), ("rotate_cw", "rotate_ccw"),
                       ("grow", "shrink")):
        items.append(dict(name=f"conflict_{label}", kind="conflict", label=cls(label),
                          context=cls(ctx), suits=BOTH,
                          description=f"{label} beside the context object of {ctx}: a "
                                      "context-biased model follows the scene, a motion "
                                      "model the actor"))
    for label in ("move_up", "rotate_ccw", "shrink"):
        items.append(dict(name=f"agree_{label}", kind="agree", label=cls(label),
                          context=cls(label), suits=BOTH,
                          description=f"{label} beside its own context object: scene and "
                                      "motion tell the same"))
    items.append(dict(name="static", kind="static", label=None, context=None, suits=BOTH,
                      description="all frames identical (a still of a rendered clip): no "
                                  "motion at all"))
    items.append(dict(name="long_move_right", kind="long", label=cls("move_right"),
                      context=int(rng.choice([k for k in range(8) if k != cls("move_right")])),
                      suits=("motion",), config=WorldConfig(num_frames=48),
                      description="48 frames of move_right: slide a 16-frame window along it"))
    for k, item in enumerate(items):
        item["seed"] = SEED_BASE + 100 * (k + 1) + SEED_SKIP.get(item["name"], 0)
    return items


def render(item: dict) -> SyntheticClip:
    config = item.get("config", WorldConfig())
    if item["kind"] == "static":
        return static_clip(item["seed"], config=config)
    return render_clip(item["seed"], label=item["label"], context=item["context"], config=config)


def predictions(path: Path) -> dict:
    """Top class of each bundled model whose weights exist, on the decoded video."""
    from xai_core.models.registry import get_spec, load_model
    from xai_core.predict import predict
    from xai_core.video.clip import load_clip

    out = {}
    for name in BOTH:
        if not Path(get_spec(name).weights).is_file():
            continue
        model = _MODELS.get(name) or _MODELS.setdefault(name, load_model(name, device="cpu"))
        top = predict(model, load_clip(path, model.input), top=1)[0]
        out[name] = {"class": top.class_name, "probability": round(top.probability, 4)}
    return out


_MODELS: dict = {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=SAMPLES_DIR)
    ap.add_argument("--no-predictions", action="store_true",
                    help="do not record the bundled models' predictions")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    entries = []
    for item in plan():
        clip = render(item)
        name = item["name"]
        video = write_video(args.out / f"{name}.mp4", clip.frames, fps=FPS)
        np.savez_compressed(args.out / f"{name}.masks.npz", actor_mask=clip.actor_mask,
                            context_mask=clip.context_mask)
        entry = {
            "name": name,
            "file": video.name,
            "masks": f"{name}.masks.npz",
            "label": clip.label_name,
            "context": clip.context_name,
            "frames": int(clip.frames.shape[0]),
            "fps": FPS,
            "seed": item["seed"],
            "kind": item["kind"],
            "suits": list(item["suits"]),
            "description": item["description"],
            "params": clip.params,
        }
        if not args.no_predictions:
            entry["predictions"] = predictions(video)
        entries.append(entry)
        print(f"{name:<22} {entry['kind']:<8} {entry['label']:<11} ctx {entry['context']:<17} "
              f"{video.stat().st_size / 1024:6.1f} KiB {entry.get('predictions', '')}")
    manifest = {
        "generator": "scripts/make_samples.py",
        "world": {k: v for k, v in WorldConfig().__dict__.items()},
        "note": "masks are exact; frames went through H.264 (lossy) and are close to, not "
                "equal to, the rendered ones",
        "samples": entries,
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
    print(f"{len(entries)} samples, {total / 1024**2:.2f} MiB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
