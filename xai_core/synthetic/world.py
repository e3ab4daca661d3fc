"""A procedural action world whose classes are defined only by motion.

No real action dataset can be downloaded here, and none has pixel-exact ground truth
for *motion* evidence versus *scene* evidence. In this world:

* an **actor** (random polygon or disc, random colour, with an asymmetric stripe
  marker so that rotation is visible) moves left / right / up / down, rotates
  clockwise / anticlockwise, grows or shrinks — the class is that motion and nothing
  else;
* the actor's **mid-clip** position, size and angle are drawn from one distribution
  for every class, so a single frame does not give the class away (the leakage the
  project's trial found);
* a static **context** object of one of eight kinds correlates with the class at a
  chosen rate: 0 = independent, 1 = always the class' own kind. A model trained with
  rate 1 can learn a *spatial bias*;
* a textured background and static distractor shapes (some with markers, like the
  actor's) make "the thing with a marker" insufficient: only its motion tells;
* every frame has a ground-truth mask of the actor (where the motion evidence is) and
  of the context object (where the static evidence is).

Everything is deterministic given the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

CLASSES: tuple[str, ...] = (
    "move_left",
    "move_right",
    "move_up",
    "move_down",
    "rotate_cw",
    "rotate_ccw",
    "grow",
    "shrink",
)

#: Context kinds; kind i is the "own" context of class i when context is biased.
CONTEXT_KINDS: tuple[str, ...] = (
    "checker_square",
    "striped_disc",
    "green_cross",
    "orange_ring",
    "yellow_star",
    "purple_diamond",
    "hatched_triangle",
    "dotted_hexagon",
)

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


@dataclass
class SyntheticClip:
    """One rendered clip with its ground truth.

    Attributes
    ----------
    frames
        uint8 (T, H, W, 3), RGB.
    actor_mask, context_mask
        bool (T, H, W): visible pixels of the actor / of the context object.
    label
        Class index into :data:`CLASSES`.
    context
        Context kind index into :data:`CONTEXT_KINDS`.
    params
        The drawn parameters (for the manifest and for debugging).
    """

    frames: np.ndarray
    actor_mask: np.ndarray
    context_mask: np.ndarray
    label: int
    context: int
    params: dict = field(default_factory=dict)

    @property
    def label_name(self) -> str:
        return CLASSES[self.label]

    @property
    def context_name(self) -> str:
        return CONTEXT_KINDS[self.context]


@dataclass(frozen=True)
class WorldConfig:
    """Knobs of the world. Defaults are what the bundled models were trained on."""

    size: int = 112
    num_frames: int = 16
    context_rate: float = 0.0
    noise: float = 2.0
    max_distractors: int = 3
    actor_radius: tuple[float, float] = (11.0, 17.0)
    mid_range: tuple[float, float] = (38.0, 74.0)
    speed: tuple[float, float] = (1.3, 2.3)  # px / frame
    spin: tuple[float, float] = (0.16, 0.34)  # rad / frame
    zoom: tuple[float, float] = (1.7, 2.3)  # total size factor over the clip


# ----------------------------------------------------------------------------- drawing
def _pts(xy: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(xy) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _regular_polygon(cx: float, cy: float, r: float, n: int, theta: float) -> np.ndarray:
    a = theta + 2 * math.pi * np.arange(n) / n
    return np.stack([cx + r * np.cos(a), cy - r * np.sin(a)], axis=1)


def _star(cx: float, cy: float, r: float, theta: float) -> np.ndarray:
    a = theta + math.pi * np.arange(10) / 5
    rad = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
    return np.stack([cx + rad * np.cos(a), cy - rad * np.sin(a)], axis=1)


def _fill(img: np.ndarray, poly: np.ndarray, color) -> None:
    cv2.fillPoly(img, [_pts(poly)], color, lineType=cv2.LINE_AA, shift=_SHIFT)


def _disc(img: np.ndarray, cx: float, cy: float, r: float, color) -> None:
    cv2.circle(img, (int(round(cx * _ONE)), int(round(cy * _ONE))), int(round(r * _ONE)),
               color, -1, lineType=cv2.LINE_AA, shift=_SHIFT)


def _contrast(color: np.ndarray) -> tuple[int, int, int]:
    lum = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    return (20, 20, 20) if lum > 110 else (240, 240, 240)


def _draw_shape(img: np.ndarray, kind: str, cx: float, cy: float, r: float, theta: float,
                color, marker) -> None:
    """Draw an actor-like shape; ``marker`` (colour or None) adds the asymmetric stripe."""
    if kind == "disc":
        _disc(img, cx, cy, r, color)
    else:
        n = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6}[kind]
        _fill(img, _regular_polygon(cx, cy, r * (1.15 if n == 3 else 1.0), n, theta + 0.3), color)
    if marker is not None:
        # A stripe from the centre to the rim plus a rim dot: unambiguous orientation.
        d = np.array([math.cos(theta), -math.sin(theta)])
        n_ = np.array([-d[1], d[0]])
        w = max(1.6, 0.22 * r)
        c = np.array([cx, cy])
        tip = c + d * 0.92 * r
        _fill(img, np.stack([c + n_ * w, tip + n_ * w, tip - n_ * w, c - n_ * w]), marker)
        _disc(img, *(c + d * 0.62 * r), max(1.5, 0.2 * r), marker)


def _draw_context(img: np.ndarray, kind: int, cx: float, cy: float, r: float) -> None:
    """Each context kind has a fixed shape, colours and pattern: recognisable in one frame."""
    name = CONTEXT_KINDS[kind]
    if name == "checker_square":
        s = r / 2
        for i in range(4):
            for j in range(4):
                col = (210, 30, 30) if (i + j) % 2 == 0 else (250, 250, 250)
                x0, y0 = cx - r + i * s, cy - r + j * s
                _fill(img, np.array([[x0, y0], [x0 + s, y0], [x0 + s, y0 + s], [x0, y0 + s]]), col)
    elif name == "striped_disc":
        _disc(img, cx, cy, r, (30, 60, 220))
        for k in (-0.5, 0.0, 0.5):
            y = cy + k * r
            half = math.sqrt(max(r * r - (k * r) ** 2, 0)) * 0.95
            cv2.line(img, (int((cx - half) * _ONE), int(y * _ONE)), (int((cx + half) * _ONE),
                     int(y * _ONE)), (245, 245, 245), 2, cv2.LINE_AA, _SHIFT)
    elif name == "green_cross":
        w = r * 0.35
        for hw, hh in ((w, r), (r, w)):  # vertical bar, then horizontal bar
            bar = [[cx - hw, cy - hh], [cx + hw, cy - hh], [cx + hw, cy + hh], [cx - hw, cy + hh]]
            _fill(img, np.array(bar), (20, 170, 40))
    elif name == "orange_ring":
        _disc(img, cx, cy, r, (250, 140, 0))
        _disc(img, cx, cy, r * 0.55, (40, 20, 0))
    elif name == "yellow_star":
        _fill(img, _star(cx, cy, r * 1.1, math.pi / 2), (250, 230, 30))
    elif name == "purple_diamond":
        _fill(img, _regular_polygon(cx, cy, r * 1.1, 4, math.pi / 2), (150, 40, 180))
        _disc(img, cx, cy, r * 0.28, (250, 250, 250))
    elif name == "hatched_triangle":
        _fill(img, _regular_polygon(cx, cy, r * 1.2, 3, math.pi / 2), (0, 200, 210))
        for k in (-0.35, 0.15):
            y = cy + k * r
            cv2.line(img, (int((cx - r * 0.5) * _ONE), int(y * _ONE)),
                     (int((cx + r * 0.5) * _ONE), int(y * _ONE)), (10, 10, 10), 2, cv2.LINE_AA,
                     _SHIFT)
    elif name == "dotted_hexagon":
        _fill(img, _regular_polygon(cx, cy, r, 6, 0.0), (120, 70, 30))
        for a in range(3):
            ang = a * 2 * math.pi / 3 + math.pi / 2
            _disc(img, cx + 0.5 * r * math.cos(ang), cy - 0.5 * r * math.sin(ang), r * 0.18,
                  (250, 250, 250))
    else:  # pragma: no cover
        raise ValueError(name)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Low-frequency coloured texture plus fine grain: static, never class-informative."""
    base = rng.uniform(70, 170, size=3)
    coarse = rng.uniform(-45, 45, size=(int(rng.integers(3, 8)),) * 2 + (3,)).astype(np.float32)
    tex = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 6, size=(size, size, 1)).astype(np.float32)
    return np.clip(base + tex + grain, 0, 255).astype(np.float32)


# ----------------------------------------------------------------------------- poses
def actor_poses(label: int, mid: tuple[float, float, float, float], rate: float,
                num_frames: int) -> np.ndarray:
    """(T, 4) array of (cx, cy, r, theta) for a class, centred on the mid-clip pose.

    ``rate`` is px/frame for translations, rad/frame for rotations and the log size
    factor per frame for grow/shrink. Image y points down, so "up" decreases cy and
    anticlockwise (as seen) increases theta.
    """
    cx, cy, r, th = mid
    dt = np.arange(num_frames) - (num_frames - 1) / 2
    name = CLASSES[label]
    poses = np.tile(np.array([cx, cy, r, th], dtype=np.float64), (num_frames, 1))
    if name == "move_left":
        poses[:, 0] -= rate * dt
    elif name == "move_right":
        poses[:, 0] += rate * dt
    elif name == "move_up":
        poses[:, 1] -= rate * dt
    elif name == "move_down":
        poses[:, 1] += rate * dt
    elif name == "rotate_cw":
        poses[:, 3] -= rate * dt
    elif name == "rotate_ccw":
        poses[:, 3] += rate * dt
    elif name == "grow":
        poses[:, 2] *= np.exp(rate * dt)
    elif name == "shrink":
        poses[:, 2] *= np.exp(-rate * dt)
    return poses


# ----------------------------------------------------------------------------- clips
def render_clip(seed: int, label: int | None = None, context: int | None = None,
                config: WorldConfig = WorldConfig()) -> SyntheticClip:
    """Render one clip, deterministically from ``seed``.

    Parameters
    ----------
    seed
        Seeds every random choice.
    label
        Class index; drawn uniformly when ``None``.
    context
        Context kind; when ``None`` it is the class' own kind with probability
        ``config.context_rate`` and uniform otherwise.
    """
    rng = np.random.default_rng(seed)
    size, T = config.size, config.num_frames
    if label is None:
        label = int(rng.integers(len(CLASSES)))
    if context is None:
        own = rng.random() < config.context_rate
        context = label if own else int(rng.integers(len(CONTEXT_KINDS)))
    if not (0 <= label < len(CLASSES)) or not (0 <= context < len(CONTEXT_KINDS)):
        raise ValueError(f"label {label} / context {context} out of range")

    name = CLASSES[label]
    mid = (float(rng.uniform(*config.mid_range)), float(rng.uniform(*config.mid_range)),
           float(rng.uniform(*config.actor_radius)), float(rng.uniform(0, 2 * math.pi)))
    if name.startswith("move"):
        rate = float(rng.uniform(*config.speed))
    elif name.startswith("rotate"):
        rate = float(rng.uniform(*config.spin))
    else:
        rate = math.log(float(rng.uniform(*config.zoom))) / (T - 1)
    poses = actor_poses(label, mid, rate, T)

    shape = str(rng.choice(["disc", "triangle", "square", "pentagon", "hexagon"]))
    color = rng.uniform(30, 255, size=3)
    color[rng.integers(3)] = rng.uniform(0, 60)  # saturated: stands out of the texture
    marker = _contrast(color)

    # Static objects are placed away from the actor's whole path.
    path_r = poses[:, 2].max()
    path = poses[:, :2]

    def free_spot(radius: float) -> tuple[float, float]:
        for _ in range(60):
            p = rng.uniform(radius + 2, size - radius - 2, size=2)
            if np.min(np.linalg.norm(path - p, axis=1)) > path_r + radius + 3:
                return float(p[0]), float(p[1])
        return float(p[0]), float(p[1])  # crowded: accept overlap (masks stay exact)

    ctx_r = float(rng.uniform(10, 13))
    ctx_xy = free_spot(ctx_r)
    distractors = []
    for _ in range(int(rng.integers(0, config.max_distractors + 1))):
        dr = float(rng.uniform(6, 13))
        dxy = free_spot(dr)
        dcol = rng.uniform(30, 255, size=3)
        dmark = _contrast(dcol) if rng.random() < 0.5 else None
        dkind = str(rng.choice(["disc", "triangle", "square", "pentagon", "hexagon"]))
        distractors.append((dkind, *dxy, dr, float(rng.uniform(0, 2 * math.pi)), dcol, dmark))

    scene = _background(rng, size)
    for dkind, dx, dy, dr, dth, dcol, dmark in distractors:
        _draw_shape(scene, dkind, dx, dy, dr, dth, tuple(float(c) for c in dcol), dmark)
    _draw_context(scene, context, *ctx_xy, ctx_r)
    ctx_canvas = np.zeros((size, size), np.uint8)
    _draw_context_mask(ctx_canvas, context, *ctx_xy, ctx_r)

    frames = np.empty((T, size, size, 3), np.uint8)
    actor_mask = np.zeros((T, size, size), bool)
    context_mask = np.zeros((T, size, size), bool)
    col = tuple(float(c) for c in color)
    for t, (cx, cy, r, th) in enumerate(poses):
        img = scene.copy()
        _draw_shape(img, shape, cx, cy, r, th, col, marker)
        m = np.zeros((size, size), np.uint8)
        _draw_shape(m, shape, cx, cy, r, th, 255, None)
        actor_mask[t] = m > 127
        context_mask[t] = (ctx_canvas > 127) & ~actor_mask[t]
        if config.noise > 0:
            img += rng.standard_normal(img.shape, dtype=np.float32) * config.noise
        frames[t] = np.clip(img, 0, 255).round().astype(np.uint8)

    params = {
        "seed": int(seed),
        "label": CLASSES[label],
        "context": CONTEXT_KINDS[context],
        "actor_shape": shape,
        "mid_pose": [round(v, 3) for v in mid],
        "rate": round(rate, 5),
        "context_xy": [round(v, 2) for v in ctx_xy],
        "distractors": len(distractors),
    }
    return SyntheticClip(frames, actor_mask, context_mask, int(label), int(context), params)


def _draw_context_mask(canvas: np.ndarray, kind: int, cx: float, cy: float, r: float) -> None:
    """Silhouette of a context object (its pattern does not matter for the mask)."""
    tmp = np.zeros(canvas.shape + (3,), np.float32)
    _draw_context(tmp, kind, cx, cy, r)
    # Every context kind is drawn with non-black pixels over its silhouette except the
    # ring's dark centre and hatch lines, which are still part of the object: fill holes.
    sil = (tmp.max(axis=2) > 0).astype(np.uint8) * 255
    contours, _ = cv2.findContours(sil, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(canvas, contours, -1, 255, thickness=-1)


def static_clip(seed: int, config: WorldConfig = WorldConfig()) -> SyntheticClip:
    """A clip whose frames are all identical (the mid frame of a rendered clip).

    The invariant clip of the engine: every freeze-frame clip equals the clip itself.
    """
    clip = render_clip(seed, config=config)
    mid = config.num_frames // 2
    T = config.num_frames
    frames = np.repeat(clip.frames[mid : mid + 1], T, axis=0)
    actor = np.repeat(clip.actor_mask[mid : mid + 1], T, axis=0)
    ctx = np.repeat(clip.context_mask[mid : mid + 1], T, axis=0)
    params = dict(clip.params, static=True)
    return SyntheticClip(frames, actor, ctx, clip.label, clip.context, params)
