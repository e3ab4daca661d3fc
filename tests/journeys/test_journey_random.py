"""Journey 9 in a real browser: a seeded random journey of at least 50 widget changes
(seed :data:`SEED`; ``XAI_JOURNEY_SEED=n`` tries another)."""

from __future__ import annotations

import os
import random
from collections import Counter

import pytest
from browser_helpers import PLAYER
from journey import Journey, JourneyError
from journey_steps import (
    SAMPLES,
    SIGMA,
    SLICE,
    START,
    player_shows,
    says,
)

pytestmark = [pytest.mark.browser, pytest.mark.journey]

#: The random journey's seed (``XAI_JOURNEY_SEED`` overrides it).
SEED = int(os.environ.get("XAI_JOURNEY_SEED", "20261128"))
RANDOM_STEPS = 50
#: Methods the journey adds: each explains a clip in a few seconds.
CHEAP_METHODS = ("gradient (gradient)", "gradcam (cam)", "input-x-gradient (gradient)",
                 "dtd (lrp)")


def _checked(j: Journey, group: str) -> str:
    return j.page.get_by_role("radiogroup", name=group, exact=True).locator(
        '[data-testid="stRadioOption"]:has(input:checked)').inner_text().strip()


def _shown(j: Journey, role: str, name: str) -> bool:
    return j.page.get_by_role(role, name=name, exact=True).count() > 0


def _other(rng: random.Random, options: list[str], current: str) -> str:
    return rng.choice([o for o in options if o != current])


def _radio_other(j: Journey, rng: random.Random, group: str) -> None:
    options = j.page.get_by_role("radiogroup", name=group, exact=True).locator(
        '[data-testid="stRadioOption"]').all_inner_texts()
    j.radio(group, _other(rng, [o.strip() for o in options], _checked(j, group)))


def _select_other(j: Journey, rng: random.Random, label: str, first: int = 99) -> None:
    j.select(label, _other(rng, j.options(label)[:first], j.value(label)))


def _methods(j: Journey, rng: random.Random) -> None:
    chosen = j.chosen("Explanation methods")
    if chosen and (len(chosen) >= 2 or rng.random() < 0.4):
        j.remove("Explanation methods", rng.choice(chosen))
    else:
        j.add("Explanation methods", rng.choice([m for m in CHEAP_METHODS if m not in chosen]))


def _sigma(j: Journey, rng: random.Random) -> None:
    j.expand("Decomposition options")
    value = j.slider_value(SIGMA)
    key = "ArrowLeft" if value >= 8 or (value > 0.5 and rng.random() < 0.5) else "ArrowRight"
    j.slide(SIGMA, key)


def _slice(j: Journey, rng: random.Random) -> None:
    j.expand("Decomposition options")
    _select_other(j, rng, SLICE)


def _steps(j: Journey, rng: random.Random) -> None:
    n = int(j.player().evaluate("window.__player.data.n"))
    key, count = rng.choice(["ArrowRight", "ArrowLeft"]), rng.randint(1, 4)
    want = (j.frame() + (count if key == "ArrowRight" else -count)) % n
    j.keys(*[key] * count)
    player_shows(j, want)


def _play_pause(j: Journey, rng: random.Random) -> None:
    j.keys(" ")
    start = j.frame()
    j.player().wait_for_function(f"() => document.body.dataset.frame !== '{start}'",
                                 timeout=30_000)
    j.keys(" ", rerun=True)
    says(j, rf"show frame {j.frame()}\.")


def _samples(j: Journey, rng: random.Random) -> None:
    options = [o for o in j.options("Sample clip") if o.split(" — ")[0] in SAMPLES]
    j.select("Sample clip", _other(rng, options, j.value("Sample clip")))


#: What the random journey does: (name, weight, is it on the page now?, do it). Changes
#: that compute a new explanation weigh half as much as those that only redraw it.
ACTIONS = [
    ("sample clip", 1, lambda j: _shown(j, "combobox", "Sample clip"), _samples),
    ("bundled model", 1, lambda j: _shown(j, "combobox", "Bundled model"),
     lambda j, rng: _select_other(j, rng, "Bundled model")),
    ("target", 1, lambda j: _shown(j, "combobox", "Class to explain"),
     lambda j, rng: _select_other(j, rng, "Class to explain", first=4)),
    ("methods", 1, lambda j: True, _methods),
    ("sigma", 1, lambda j: bool(j.chosen("Explanation methods")), _sigma),
    ("slice", 1, lambda j: bool(j.chosen("Explanation methods")), _slice),
    ("colour scale", 2, lambda j: True, lambda j, rng: _radio_other(j, rng, "Colour scale")),
    ("colour map", 2, lambda j: True, lambda j, rng: _select_other(j, rng, "Colour map")),
    ("overlay / heat map", 2, lambda j: True,
     lambda j, rng: _radio_other(j, rng, "Show relevance")),
    ("panel scales", 2, lambda j: True,
     lambda j, rng: _radio_other(j, rng, "Panels of a method")),
    ("shown method", 2, lambda j: len(j.chosen("Explanation methods")) > 1,
     lambda j, rng: _select_other(j, rng, "Method shown in the frame views")),
    ("motion panel", 2, lambda j: True,
     lambda j, rng: j.toggle("Motion panel: selective relevance")),
    ("grey frames", 2, lambda j: True,
     lambda j, rng: j.toggle("Grey frames under the relevance")),
    ("frame steps", 2, lambda j: j.page.locator(PLAYER).count() > 0, _steps),
    ("play / pause", 2, lambda j: j.page.locator(PLAYER).count() > 0, _play_pause),
]


def test_a_seeded_random_journey(journey, server):
    j = journey
    rng = random.Random(SEED)
    j.name = f"random journey (XAI_JOURNEY_SEED={SEED})"
    j.open(server.url + START)
    done: Counter[str] = Counter()
    while sum(done.values()) < RANDOM_STEPS:
        here = [a for a in ACTIONS if a[2](j)]
        name, _, _, act = rng.choices(here, weights=[a[1] for a in here])[0]
        try:
            act(j, rng)
        except JourneyError:
            raise
        except Exception as exc:  # noqa: BLE001 - a timeout between steps: say where
            j.fail(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        done[name] += 1
    print(f"random journey, seed {SEED}: {dict(done)}")
    assert j.chosen("Explanation methods") == [] or _shown(j, "combobox", "Class to explain")
