"""Train a bundled model on freshly generated synthetic clips and write weights + manifest.

Reproducible: every clip is rendered from a seed (training seeds and held-out seeds are
disjoint ranges), the torch seed is fixed, and the manifest records the configuration,
the held-out accuracies, the training time and the sha256 of the weights.

Usage::

    python scripts/train_bundled.py --model motion --steps 320
    python scripts/train_bundled.py --model context-biased --steps 200
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xai_core.models.architectures import SmallC3D  # noqa: E402
from xai_core.models.bundled import BUNDLED_CONTEXT_RATE, SMALL_C3D_INPUT, WEIGHTS_DIR  # noqa: E402
from xai_core.synthetic.accuracy import synthetic_accuracy  # noqa: E402
from xai_core.synthetic.world import CLASSES, WorldConfig, render_clip  # noqa: E402
from xai_core.video.preprocess import normalise  # noqa: E402

TRAIN_SEED_BASE = 10_000_000
HELD_OUT_SEED_BASE = 900_000_000  # evaluation seeds: never seen in training


class FreshClips(IterableDataset):
    """An endless stream of new clips (no epoch, no overfitting to a fixed set)."""

    def __init__(self, seed: int, config: WorldConfig) -> None:
        self.seed, self.config = seed, config

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        i = wid
        while True:
            clip = render_clip(TRAIN_SEED_BASE + self.seed * 100_000_000 + i, config=self.config)
            i += nw
            yield torch.from_numpy(clip.frames), clip.label


def evaluate(model: torch.nn.Module, seeds, config: WorldConfig, **kw) -> dict:
    return synthetic_accuracy(model, SMALL_C3D_INPUT, seeds, config, **kw)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(BUNDLED_CONTEXT_RATE), required=True)
    p.add_argument("--steps", type=int, default=1100)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-clips", type=int, default=800)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=1, help="clip-rendering processes")
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--init", type=Path, help="start from these weights (continue training)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rate = BUNDLED_CONTEXT_RATE[args.model]
    config = WorldConfig(context_rate=rate)
    device = torch.device(args.device)

    model = SmallC3D(num_classes=len(CLASSES))
    if args.init:
        model.load_state_dict(torch.load(args.init, map_location="cpu", weights_only=True))
    model = model.to(device).to(memory_format=torch.channels_last_3d)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    warmup = max(1, args.steps // 30)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, args.steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    loader = DataLoader(FreshClips(args.seed, config), batch_size=args.batch,
                        num_workers=args.workers, persistent_workers=args.workers > 0)
    lossf = torch.nn.CrossEntropyLoss(label_smoothing=0.05)
    quick_seeds = np.arange(HELD_OUT_SEED_BASE + 500_000, HELD_OUT_SEED_BASE + 500_000 + 256)

    t0 = time.time()
    log = []
    bar = tqdm(total=args.steps, desc=f"train {args.model}", unit="step", mininterval=5)
    it = iter(loader)
    run_loss, run_acc = 0.0, 0.0
    for step in range(args.steps):
        model.train()
        frames, labels = next(it)
        x = normalise(frames, SMALL_C3D_INPUT).to(device)
        x = x.contiguous(memory_format=torch.channels_last_3d)
        y = labels.to(device)
        logits = model(x)
        loss = lossf(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        run_loss = 0.95 * run_loss + 0.05 * loss.item() if step else loss.item()
        run_acc = 0.95 * run_acc + 0.05 * (logits.argmax(1) == y).float().mean().item()
        bar.set_postfix(loss=f"{run_loss:.3f}", acc=f"{run_acc:.2f}",
                        lr=f"{sched.get_last_lr()[0]:.1e}")
        bar.update()
        if (step + 1) % 200 == 0 or step + 1 == args.steps:
            q = evaluate(model.cpu() if device.type != "cpu" else model, quick_seeds, config)
            model.to(device)
            log.append({"step": step + 1, "minutes": round((time.time() - t0) / 60, 2),
                        "train_loss": round(run_loss, 4), "quick_heldout_acc": q["accuracy"]})
            tqdm.write(json.dumps(log[-1]))
    bar.close()
    train_seconds = time.time() - t0

    model = model.cpu().to(memory_format=torch.contiguous_format).eval()
    seeds = np.arange(HELD_OUT_SEED_BASE, HELD_OUT_SEED_BASE + args.eval_clips)
    results = {"heldout": evaluate(model, seeds, config),
               "heldout_context_agrees": evaluate(model, seeds, config, context_mode="agree"),
               "heldout_context_conflicts": evaluate(model, seeds, config, context_mode="conflict"),
               "freeze_frame_mid": evaluate(model, seeds[:400], config, still=True)}

    args.out.mkdir(parents=True, exist_ok=True)
    wpath = args.out / f"{args.model}.pt"
    tmp = wpath.with_suffix(".pt.tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, wpath)
    manifest = {
        "name": args.model,
        "architecture": "small-c3d",
        "classes": list(CLASSES),
        "input": SMALL_C3D_INPUT.to_dict(),
        "weights": wpath.name,
        "sha256": sha256(wpath),
        "parameters": sum(p.numel() for p in model.parameters()),
        "training": {
            "context_rate": rate,
            "steps": args.steps,
            "batch": args.batch,
            "clips_seen": args.steps * args.batch,
            "optimizer": "AdamW",
            "lr": args.lr,
            "weight_decay": args.weight_decay,
            "schedule": f"linear warm-up {warmup} steps, cosine to 0",
            "label_smoothing": 0.05,
            "seed": args.seed,
            "init": str(args.init) if args.init else None,
            "world": config.__dict__,
            "train_seed_base": TRAIN_SEED_BASE,
            "heldout_seed_base": HELD_OUT_SEED_BASE,
            "seconds": round(train_seconds, 1),
            "device": str(device),
            "threads": args.threads,
            "torch": torch.__version__,
            "machine": platform.machine(),
            "log": log,
        },
        "accuracy": {
            "heldout": results["heldout"]["accuracy"],
            "heldout_context_agrees": results["heldout_context_agrees"]["accuracy"],
            "heldout_context_conflicts": results["heldout_context_conflicts"]["accuracy"],
            "conflicts_predicted_as_context_class":
                results["heldout_context_conflicts"]["predicted_context_class"],
            "freeze_frame_mid": results["freeze_frame_mid"]["accuracy"],
            "per_class_heldout": results["heldout"]["per_class"],
            "heldout_clips": args.eval_clips,
        },
    }
    mpath = args.out / f"{args.model}.json"
    mpath.write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest["accuracy"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
