"""Building blocks of spatio-temporal extremal perturbation (used by :mod:`.perturbation`).

Each piece is one idea of Fong et al. (2019) "Understanding deep networks via extremal
perturbations and smooth masks" as extended to video by Li et al. (2021) "A
Comprehensive Study on Visual Explanations for Spatio-temporal Networks":

* :class:`SmoothMaskGenerator` — a coarse spatio-temporal grid of parameters turned into
  a full-resolution mask by the *smooth max* of kernel-weighted grid values;
* :func:`perturbation_pyramid` / :func:`apply_pyramid` — the blur pyramid (or fade to the
  mean) that a mask interpolates in, in the model's normalised space;
* :func:`area_loss` — the rank-based area constraint ("vecsort" against a 0/1 template),
  with one budget per clip volume or one per frame;
* :func:`temporal_smooth` — Li et al.'s Gaussian smoothing of a mask over ±Δt frames;
* :func:`ellipsoid_kernel` / :func:`core_loss` — Li et al.'s shape ("core") loss.

Everything works on batches of masks so that all areas of all clips are optimised in
one forward/backward pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..filters import gaussian_blur

#: Coldness of the softmax in the smooth max (Fong et al.: 20).
SMOOTH_MAX_COLDNESS = 20.0


def smooth_max_kernel(z: torch.Tensor) -> torch.Tensor:
    """Fong et al.'s radial profile k(z) = exp(−2·max(z − ½, 0)²): flat top, Gaussian tail."""
    return torch.exp(-2.0 * (z - 0.5).clamp(min=0.0) ** 2)


def auto_sigma(height: int, width: int, step: int) -> float:
    """Default smoothing radius: Li et al.'s σ = 11 px at 112 px, scaled with the short side,
    but never below 11/7 of the grid step (their ratio).

    The kernel is flat up to σ/2; below σ = √2·step a pixel between four grid points is
    outside every flat top, and the mask cannot form a plateau of ones — it breaks into
    one blob per grid point (seen with step 4 on 32-px clips).
    """
    return max(11.0 * min(height, width) / 112.0, 11.0 / 7.0 * step)


class SmoothMaskGenerator:
    """Turn grid parameters (N, Tg, gh, gw) into masks in [0, 1] on a padded canvas.

    Spatially, grid point (i, j) sits at the centre of its ``step``×``step`` cell; the
    mask at pixel u is the smooth max over the (2r+1)² nearest grid points of
    ``k(|u − c|/σ)·p``, with smooth max(v) = Σ vₖ·softmax(20·v)ₖ (Fong et al. 2019, eq. 9).
    The smooth max, unlike a sum of Gaussians, cannot exceed the largest parameter, so
    the mask stays in [0, 1] and flat plateaus of ones are reachable.

    The mask is generated on a *canvas*: the clip plus a margin of ⌈σ⌉ pixels on every
    side (as Fong et al.'s code does). The area term sorts the whole canvas, so a grid
    point at the border of the clip costs as much budget as one in the middle; sorting
    only the clip made border points cheap, and the optimiser filled the budget with
    them whenever the model's gradient was weak. :meth:`crop` gives the part that is
    applied to the clip.

    Temporally, frames are grouped in cells of ``temporal_step`` frames that share one
    grid slice (Li et al. optimise one mask per frame: ``temporal_step=1``); smoothing
    across frames is the separate, optional :func:`temporal_smooth`.

    Parameters
    ----------
    shape
        (T, H, W) of the clip.
    step
        Spatial grid step in pixels.
    sigma
        Spatial smoothing radius in pixels.
    temporal_step
        Frames per temporal grid cell.
    device
        Where the precomputed kernel weights live.
    sample_step
        Pixels between evaluations of the smooth max (``None``: ⌊σ/4⌋, at least 1).
    """

    def __init__(self, shape: tuple[int, int, int], step: int, sigma: float,
                 temporal_step: int = 1, device: torch.device | str = "cpu") -> None:
        t, h, w = shape
        self.shape = (t, h, w)
        self.step = step
        self.temporal_step = temporal_step
        self.sigma = float(sigma)
        self.margin = math.ceil(self.sigma)
        self.grid_shape = (math.ceil(t / temporal_step), math.ceil(h / step), math.ceil(w / step))
        self.canvas_shape = (t, h + 2 * self.margin, w + 2 * self.margin)
        # Neighbours up to 1 + ⌈σ/step⌉ cells away, as Fong et al.
        self.radius = 1 + math.ceil(self.sigma / step)
        self._pad_cells = math.ceil(self.margin / step)  # grid cells covering the margin
        device = torch.device(device)
        self._frame_cell = torch.arange(t, device=device) // temporal_step
        # The distance from a pixel to the centre of the grid point `offset` cells from its
        # own cell depends only on the pixel's position inside the cell: one step×step
        # tile of weights per offset serves every cell, so the K neighbour values are
        # broadcast over the tiles instead of gathered per pixel (whose backward, a
        # scatter-add, cost more than everything else).
        r = self.radius
        offsets = torch.arange(-r, r + 1, device=device, dtype=torch.float32)
        inside = torch.arange(step, device=device, dtype=torch.float32)
        d = inside[None, :] - (offsets[:, None] * step + (step - 1) / 2.0)  # (2r+1, step)
        dist = torch.sqrt(d[:, None, :, None] ** 2 + d[None, :, None, :] ** 2)
        tiles = smooth_max_kernel(dist / self.sigma).reshape(-1, step, step)
        # Drop the grid points farther than 1.5σ from every pixel of the cell (weight
        # < e⁻² ≈ 0.14 everywhere): they can only set the mask where no nearer point is
        # on, to < 0.14 of their value, and they are half of the K terms (the corners of
        # the (2r+1)² square) — the smooth max is the costliest step after the model.
        keep = (tiles.flatten(1).amax(dim=1) >= math.exp(-2.0)).nonzero().flatten()
        self._offsets = [divmod(int(k), 2 * r + 1) for k in keep]  # (row, col) in the square
        self._tiles = tiles[keep]  # (K, s, s)

    def __call__(self, params: torch.Tensor) -> torch.Tensor:
        """Canvas masks (N, T, H + 2·margin, W + 2·margin) from grid parameters (N, Tg, gh, gw)."""
        n, tg, gh, gw = params.shape
        if (tg, gh, gw) != self.grid_shape:
            raise ValueError(f"grid parameters {tuple(params.shape[1:])} != {self.grid_shape}")
        r, pc, s = self.radius, self._pad_cells, self.step
        # Zero padding: grid points outside the clip contribute nothing to the smooth max.
        padded = F.pad(params.reshape(n * tg, gh, gw), (pc + r,) * 4)
        ph, pw = gh + 2 * pc, gw + 2 * pc
        # K shifted views of the grid (F.unfold does the same but is pathologically slow
        # on such small inputs with several CPU threads)
        neigh = torch.stack([padded[:, oy : oy + ph, ox : ox + pw] for oy, ox in self._offsets], 1)
        mask = _TiledSmoothMax.apply(neigh, self._tiles)  # (N·Tg, ph·s, pw·s)
        # the full grid starts pc cells before the clip; the canvas `margin` pixels before
        top = pc * s - self.margin
        _, hc, wc = self.canvas_shape
        canvas = mask[:, top : top + hc, top : top + wc].clamp(0.0, 1.0)
        return canvas.reshape(n, tg, hc, wc)[:, self._frame_cell]

    def crop(self, canvas: torch.Tensor) -> torch.Tensor:
        """The clip's part (…, T, H, W) of canvas masks."""
        m = self.margin
        return canvas[..., m : m + self.shape[1], m : m + self.shape[2]]


class _TiledSmoothMax(torch.autograd.Function):
    """mask = Σₖ vₖ·softmax(β·v)ₖ with vₖ = neighₖ(cell)·tileₖ(pixel in cell).

    ``neigh`` (N, K, ph, pw): the K neighbour values of every cell; ``tiles`` (K, s, s).
    Returns (N, ph·s, pw·s). Autograd through the same three lines keeps two K-fold
    copies of every mask for the backward pass (≈ 250 MB for 4 masks of 16×140×140) and
    streams them through memory; this computes one map at a time, cache-sized, and the
    backward recomputes vₖ — 1.6× faster on the CPU and K-fold lighter.
    """

    @staticmethod
    def _terms(neigh: torch.Tensor, tiles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, s = tiles.shape[0], tiles.shape[-1]
        v = neigh[:, :, :, None, :, None] * tiles.view(1, k, 1, s, 1, s)
        return v, torch.softmax(SMOOTH_MAX_COLDNESS * v, dim=1)

    @staticmethod
    def _chunk(neigh: torch.Tensor, tiles: torch.Tensor) -> int:
        per_map = tiles.numel() * neigh.shape[2] * neigh.shape[3]
        # ~16 MB per K-fold tensor: cache-sized, yet large enough for several threads
        # (1-MB chunks were 2× slower with 2 threads on a busy 2-core machine)
        return max(1, (1 << 22) // per_map)

    @staticmethod
    def forward(ctx, neigh: torch.Tensor, tiles: torch.Tensor) -> torch.Tensor:
        n, _, ph, pw = neigh.shape
        s = tiles.shape[-1]
        out = neigh.new_empty(n, ph, s, pw, s)
        step = _TiledSmoothMax._chunk(neigh, tiles)
        for i in range(0, n, step):
            v, sm = _TiledSmoothMax._terms(neigh[i : i + step], tiles)
            out[i : i + step] = (v * sm).sum(dim=1)
        ctx.save_for_backward(neigh, tiles, out)
        return out.view(n, ph * s, pw * s)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        neigh, tiles, out = ctx.saved_tensors
        n, k, ph, pw = neigh.shape
        s = tiles.shape[-1]
        g = grad.reshape(n, 1, ph, s, pw, s)
        mask = out.view(n, 1, ph, s, pw, s)
        t6 = tiles.view(1, k, 1, s, 1, s)
        d_neigh = torch.empty_like(neigh)
        step = _TiledSmoothMax._chunk(neigh, tiles)
        for i in range(0, n, step):
            sl = slice(i, i + step)
            v, sm = _TiledSmoothMax._terms(neigh[sl], tiles)
            # ∂mask/∂vₖ = softmaxₖ·(1 + β(vₖ − mask));  ∂vₖ/∂neighₖ = tileₖ
            dv = sm.mul_((v - mask[sl]).mul_(SMOOTH_MAX_COLDNESS).add_(1.0)).mul_(g[sl])
            d_neigh[sl] = dv.mul_(t6).sum(dim=(3, 5))
        return d_neigh, None


# --------------------------------------------------------------------------- perturbation
def perturbation_pyramid(x: torch.Tensor, kind: str = "blur", levels: int = 8,
                         max_blur: float = 20.0) -> torch.Tensor:
    """Stack of increasingly faithful versions of ``x``: (B, L, C, T, H, W).

    Level 0 is the most perturbed (blur σ = ``max_blur``, or all-zero = the dataset mean
    in normalised space for ``"fade"``), level L−1 is ``x`` itself; a mask value m in
    [0, 1] reads level m·(L−1) (Fong et al. 2019, sec. 4).
    """
    if levels < 2:
        raise ValueError("a perturbation pyramid needs at least 2 levels")
    out = []
    for frac in torch.linspace(0.0, 1.0, levels).tolist():
        if kind == "blur":
            out.append(gaussian_blur(x, (1.0 - frac) * max_blur, padding="replicate"))
        elif kind == "fade":
            out.append(x * frac)
        else:
            raise ValueError(f"unknown perturbation {kind!r}")
    return torch.stack(out, dim=1)


def apply_pyramid(pyramid: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Perturbed clips for masks (B, M, T, H, W) over pyramids (B, L, C, T, H, W).

    Linear interpolation between the two pyramid levels bracketing m·(L−1); returns
    (B·M, C, T, H, W), clip-major (all masks of clip 0 first).
    """
    b, levels, c = pyramid.shape[:3]
    m = masks.shape[1]
    pos = masks.clamp(0.0, 1.0) * (levels - 1)
    lo = pos.detach().floor().clamp(max=levels - 2)
    frac = (pos - lo).unsqueeze(2)  # (B, M, 1, T, H, W); gradient flows through here
    idx = lo.long().unsqueeze(2).unsqueeze(2).expand(b, m, 1, c, *masks.shape[2:])
    pyr = pyramid.unsqueeze(1).expand(b, m, *pyramid.shape[1:])
    y0 = torch.gather(pyr, 2, idx).squeeze(2)
    y1 = torch.gather(pyr, 2, idx + 1).squeeze(2)
    return (y0 + frac * (y1 - y0)).reshape(b * m, c, *masks.shape[2:])


# --------------------------------------------------------------------------- constraints
def area_templates(areas: torch.Tensor, n: int, kept_of: int) -> torch.Tensor:
    """Sorted target vectors (A, n) for masks of n values: zeros, then round(a·kept_of) ones.

    Li et al. eq. 4's r_V. ``kept_of`` is the size the area refers to (the clip's voxels,
    or one frame's pixels) when the sorted values also include the canvas margin.
    """
    ones = torch.round(areas * kept_of).long().clamp(1, n)
    return (torch.arange(n, device=areas.device)[None, :] >= (n - ones)[:, None]).float()


def area_loss(masks: torch.Tensor, templates: torch.Tensor, budget: str = "3d") -> torch.Tensor:
    """Mean squared distance between sorted mask values and their template, per mask.

    Parameters
    ----------
    masks
        (N, T, H, W) in [0, 1].
    templates
        (N, T·H·W) for ``"3d"`` (one budget for the whole volume), or (N, H·W) for
        ``"2d-per-frame"`` (every frame must keep the same area).
    """
    n, t = masks.shape[:2]
    if budget == "3d":
        flat = masks.reshape(n, -1)
        return ((flat.sort(dim=1).values - templates) ** 2).mean(dim=1)
    if budget == "2d-per-frame":
        flat = masks.reshape(n, t, -1)
        return ((flat.sort(dim=2).values - templates[:, None, :]) ** 2).mean(dim=(1, 2))
    raise ValueError(f"unknown area budget {budget!r}")


def temporal_smooth(masks: torch.Tensor, dt: int) -> torch.Tensor:
    """Li et al. eq. 7: average (N, T, H, W) masks over ±``dt`` frames.

    Kernel k(u) = exp(−u²/(0.6·σ)) with σ = Δt as printed in the paper, normalised to
    sum to one over the frames that exist (so border frames are not darkened).
    """
    if dt <= 0:
        return masks
    u = torch.arange(-dt, dt + 1, device=masks.device, dtype=masks.dtype)
    k = torch.exp(-(u**2) / (0.6 * dt)).view(1, 1, -1, 1, 1)
    m = masks.unsqueeze(1)
    num = F.conv3d(m, k, padding=(dt, 0, 0))
    den = F.conv3d(torch.ones_like(m[:, :, :, :1, :1]), k, padding=(dt, 0, 0))
    return (num / den).squeeze(1)


def ellipsoid_kernel(size: tuple[int, int, int],
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """Binary ellipsoid inscribed in a (T_K, H_K, W_K) box (Li et al. eq. 9).

    The paper's eq. 9 compares the distance of coordinates in [−½, ½] with 1, which
    keeps every voxel (a box); its intent, an ellipsoid, needs radius ½ — used here.
    """
    axes = [(torch.arange(s, device=device, dtype=torch.float32) + 0.5) / s - 0.5 for s in size]
    gt, gy, gx = torch.meshgrid(*axes, indexing="ij")
    return ((gt**2 + gy**2 + gx**2) <= 0.25).float()


def core_loss(masks: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Li et al. eq. 8, normalised: ((max(M ∗ K) − ΣK) / ΣK)² per mask (N,).

    Zero when some placement of the ellipsoid is entirely covered by ones: it pulls the
    kept voxels into one compact spatio-temporal blob. Dividing by ΣK makes the weight
    independent of the kernel size.
    """
    total = kernel.sum()
    resp = F.conv3d(masks.unsqueeze(1), kernel[None, None])
    return ((resp.flatten(1).max(dim=1).values - total) / total) ** 2
