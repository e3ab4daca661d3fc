"""The one progress event every long computation reports.

The engine, the estimate, the evaluation and the dashboard speak this type, so nobody
builds or parses stage strings: a receiver reads ``event.method`` and ``event.stage``,
and ``event.fraction`` weighted by cost when the sender knows the cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Progress", "ProgressEvent", "STAGES", "ignore"]

#: Stages of an explanation, in the order they run.
STAGES: tuple[str, ...] = ("prediction", "freeze-frame predictions", "full", "freeze frames",
                           "selective", "cached", "metrics", "clips", "windows")


@dataclass(frozen=True)
class ProgressEvent:
    """``done`` of ``total`` steps of ``stage`` (of ``method``, when one runs).

    Attributes
    ----------
    stage
        One of :data:`STAGES`.
    done, total
        Steps of this stage.
    method
        The method computing, or ``None`` for stages of the whole request.
    overall
        Fraction of the whole request done, weighted by estimated cost (0..1), when the
        sender knows it; ``None`` otherwise.
    """

    stage: str
    done: int
    total: int
    method: str | None = None
    overall: float | None = None

    @property
    def cached(self) -> bool:
        return self.stage == "cached"

    @property
    def fraction(self) -> float:
        """Fraction done: the cost-weighted ``overall`` when known, else of this stage."""
        if self.overall is not None:
            return min(max(self.overall, 0.0), 1.0)
        return min(self.done / self.total, 1.0) if self.total > 0 else 1.0

    def label(self) -> str:
        """Words for a progress bar, e.g. ``dtd: freeze frames 3/16``."""
        what = f"{self.method}: {self.stage}" if self.method else self.stage
        return what if self.total <= 1 else f"{what} {self.done}/{self.total}"


#: Receives progress events.
Progress = Callable[[ProgressEvent], None]


def ignore(event: ProgressEvent) -> None:
    """A receiver that drops every event (the default)."""
