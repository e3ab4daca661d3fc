"""What the journeys do and look for on this dashboard, on top of the generic driver
(:mod:`journey`): the start link, the sample clips, the texts the page shows, the
per-frame plot, the player's frame and pictures, downloads."""

from __future__ import annotations

import re
from pathlib import Path

from browser_helpers import ROOT
from journey import Journey

#: Every journey starts on this link: the bundled motion model, the first sample clip,
#: Grad-CAM only (the cheapest method).
START = "/?methods=gradcam"
SAMPLES = ("move_left", "grow", "rotate_cw")
#: Each journey's steps and times, and a screenshot of a failure.
OUT = ROOT / "test-output" / "browser" / "journeys"
SIGMA = "Selective threshold n (keep |∂R/∂t| > n·σ)"
SLICE = "Spatial slice of a freeze-frame explanation"


def sample(name: str, j: Journey) -> str:
    """The sample clip's option label (``grow — context unrelated to the class``)."""
    return next(o for o in j.options("Sample clip") if o.split(" — ")[0] == name)


def explaining(j: Journey) -> str:
    metric = j.main.locator('[data-testid="stMetric"]').filter(has_text="Explaining the class")
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def says(j: Journey, pattern: str) -> None:
    """The main area shows text matching ``pattern`` (the page has settled already)."""
    try:
        j.main.get_by_text(re.compile(pattern)).first.wait_for(timeout=10_000)
    except Exception:  # noqa: BLE001 - say what the page says instead
        captions = j.main.locator('[data-testid="stCaptionContainer"]').all_inner_texts()
        j.fail(f"the page does not say {pattern!r}; its captions: {captions[:6]}")


def small_video(path: Path, frames: int, seed: int = 5) -> Path:
    from xai_core.synthetic.world import WorldConfig, render_clip
    from xai_core.video.write import write_video

    clip = render_clip(seed, label=2, config=WorldConfig(num_frames=frames))
    return write_video(path, clip.frames, fps=8)


def click_point(j: Journey, frame: int) -> None:
    """Click the per-frame plot's point of ``frame`` (first trace), scrolled into view;
    the player must show that frame."""
    chart = j.main.get_by_role("heading", name="Relevance per frame").locator(
        "xpath=following::div[@data-testid='stPlotlyChart'][1]")

    def click() -> None:
        chart.evaluate("e => e.scrollIntoView({block: 'center'})")
        point = chart.locator(".scatterlayer .trace").first.locator(".points path").nth(frame)
        box = point.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        j.page.mouse.move(x, y)
        chart.locator(".hoverlayer .hovertext").first.wait_for(timeout=10_000)
        j.page.mouse.click(x, y)

    j.step(f"click the per-frame plot at frame {frame}", click)
    player_shows(j, frame)
    says(j, rf"show frame {frame}\.")


def player_shows(j: Journey, frame: int) -> None:
    try:
        j.player().wait_for_function(f"() => document.body.dataset.frame === '{frame}'",
                                     timeout=10_000)
    except Exception:  # noqa: BLE001 - say what it shows instead
        j.fail(f"the player shows frame {j.frame()}, not {frame}")


def pictures(j: Journey) -> int:
    return int(j.player().evaluate("document.querySelectorAll('#views img').length"))


def download(j: Journey, button: str, folder: Path) -> Path:
    """Click a download button (no run) and keep the file it gives."""
    saved: list[Path] = []

    def click() -> None:
        with j.page.expect_download(timeout=600_000) as info:
            j.main.get_by_role("button", name=button, exact=True).click()
        saved.append(folder / info.value.suggested_filename)
        info.value.save_as(saved[0])

    j.step(f"download {button!r}", click, rerun=False)
    return saved[0]
