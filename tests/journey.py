"""A :class:`Journey` drives the dashboard in Chromium one user step at a time.

It acts on widgets by their label (select, multiselect, radio, toggle, slider and number
keys, text fields, uploads, keys on the page) and after every step waits until the page
has settled — the page asked for a run (read from the websocket's frames, :class:`RunWatch`),
the server answered with a finished run and the page stayed idle for a moment — then
checks it: no exception box, no traceback in the server log since the previous step, no
error box that the step did not expect. Each step is logged; a failure lists the steps so
far and saves a screenshot.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from browser_helpers import LOAD_TIMEOUT_MS, player_frame

#: True while the page shows work: not connected, a run going, a status widget, spinner,
#: progress bar or skeleton (a finished run may start the next one at once).
_BUSY = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !app || app.getAttribute('data-test-script-state') !== 'notRunning'
    || app.getAttribute('data-test-connection-state') !== 'CONNECTED'
    || !!document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSpinner"],'
                                + ' [data-testid="stProgress"], [data-testid="stSkeleton"]');
}"""


class RunWatch:
    """What the page and the server say to each other about runs, read from the frames
    of Streamlit's websocket (``_stcore/stream``): every run the page asks for (a
    ``rerun_script`` BackMsg: the page sent it, so none can be missed however fast the run
    is) and whether a run that began after the last request has finished."""

    def __init__(self, page) -> None:
        self.requests = 0
        self.requested_at = 0.0
        #: a run began after the page's last request / … and has finished
        self.started = self.finished = True
        page.on("websocket", self._watch)

    def _watch(self, ws) -> None:
        if ws.url.endswith("/_stcore/stream"):
            ws.on("framesent", self._sent)
            ws.on("framereceived", self._received)

    def _sent(self, payload: bytes | str) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        if isinstance(payload, bytes) and _parses(msg, payload) and \
                msg.WhichOneof("type") == "rerun_script":
            self.requests += 1
            self.requested_at = time.monotonic()
            self.started = self.finished = False

    def _received(self, payload: bytes | str) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if not isinstance(payload, bytes) or len(payload) > 2**20:  # pictures: not a run's
            return
        msg = ForwardMsg()
        if not _parses(msg, payload):
            return
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.started = True
        elif kind == "script_finished" and self.started and \
                msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
            self.finished = True


def _parses(msg, payload: bytes) -> bool:
    from google.protobuf.message import DecodeError

    try:
        msg.ParseFromString(payload)
    except DecodeError:
        return False
    return True


#: True once a select box's list has been open for ``quiet`` ms.
_LIST_OPEN = """([quiet]) => {
  const now = performance.now();
  if (!document.querySelector('[role="listbox"]')) { window.__open = null; return false; }
  if (window.__open == null) { window.__open = now; }
  return now - window.__open >= quiet;
}"""

_ERRORS = """() => Array.from(document.querySelectorAll(
  '[data-testid="stAlertContentError"]')).map(e => e.innerText.trim())"""


class JourneyError(AssertionError):
    pass


@dataclass
class Journey:
    """One browser session on the dashboard, driven step by step and checked after each.

    ``page``: a Playwright page (its websocket is watched from the next navigation);
    ``log``: the server's log file, read from where it ended at the previous check.
    """

    page: object
    log: Path
    name: str = "journey"
    steps: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    offset: int = 0
    timeout_ms: int = LOAD_TIMEOUT_MS
    #: a failure saves a screenshot of the page here (as ``<name>-failed.png``)
    shots: Path | None = None

    def __post_init__(self) -> None:
        self.watch = RunWatch(self.page)
        self.offset = self.log.stat().st_size
        self.sidebar = self.page.locator('[data-testid="stSidebar"]')
        self.main = self.page.locator('[data-testid="stMain"]')

    # ------------------------------------------------------------------ the step frame
    def fail(self, why: str) -> None:
        listing = "\n".join(f"  {i + 1:3d}. {s}" for i, s in enumerate(self.steps))
        if self.shots is not None:
            self.shots.mkdir(parents=True, exist_ok=True)
            shot = self.shots / (re.sub(r"\W+", "-", self.name) + "-failed.png")
            with contextlib.suppress(Exception):
                self.page.screenshot(path=str(shot))
        raise JourneyError(f"{self.name}: {why}\nsteps so far:\n{listing}")

    def step(self, what: str, action: Callable[[], object], rerun: bool = True,
             errors: str | None = None, until: Callable[[], object] | None = None) -> None:
        """Do ``action`` (``rerun``: it must make the page ask for a run), wait for the page
        to settle — or, with ``until``, for what ``until`` waits for (a step taken while a
        computation goes on) —, check it. ``errors``: a pattern that error boxes of this
        step may match."""
        self.steps.append(what)
        t0 = time.monotonic()
        before = self.watch.requests
        try:
            action()
            if rerun and not self._requested(before, 15_000):
                self.fail("the step did not make the page ask for a run")
            (until or self.settle)()
        except JourneyError:
            raise
        except Exception as exc:  # noqa: BLE001 - a Playwright timeout: say where
            self.check(errors)
            self.fail(f"step failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        self.check(errors)
        self.times.append(time.monotonic() - t0)
        print(f"[{self.name}] {len(self.steps):3d}. {what} ({self.times[-1]:.1f} s)")

    def _requested(self, before: int, timeout_ms: int) -> bool:
        """Wait until the page has asked for a run since ``before`` requests (a slider
        sends its value a moment after the last key)."""
        return self.wait(lambda: self.watch.requests > before, timeout_ms)

    def run_began(self, timeout_ms: int = 60_000) -> None:
        """Wait until the server has begun a run after the page's last request."""
        if not self.wait(lambda: self.watch.started, timeout_ms):
            self.fail("the server began no run for the page's last request")

    def wait(self, condition: Callable[[], bool], timeout_ms: int) -> bool:
        """Wait until ``condition()`` (of what the websocket said); False when timed out."""
        deadline = time.monotonic() + timeout_ms / 1000
        while not condition():
            if time.monotonic() > deadline:
                return False
            self.page.wait_for_timeout(50)  # lets Playwright deliver the frame events
        return True

    def settle(self, quiet_ms: int = 500) -> None:
        """Wait until the server has answered the page's last request with a finished run
        and the page has then been idle, without a new request, for ``quiet_ms``."""
        deadline = time.monotonic() + self.timeout_ms / 1000
        quiet_since: float | None = None
        while True:
            now = time.monotonic()
            busy = (not self.watch.finished or now - self.watch.requested_at < quiet_ms / 1000
                    or self.page.evaluate(_BUSY))
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= quiet_ms / 1000:
                return
            if now > deadline:
                raise TimeoutError(f"the page did not settle within {self.timeout_ms / 1000:.0f} s")
            self.page.wait_for_timeout(100)

    def new_log(self) -> str:
        with open(self.log, errors="replace") as f:
            f.seek(self.offset)
            text = f.read()
        self.offset += len(text.encode(errors="replace"))
        return text

    def check(self, errors: str | None = None) -> None:
        text = self.new_log()
        if "Traceback" in text:
            self.fail(f"traceback in the server log:\n{text[-4000:]}")
        exc = self.page.locator('[data-testid="stException"]')
        if exc.count():
            self.fail(f"exception on the page: {exc.first.inner_text()[:2000]}")
        boxes = self.page.evaluate(_ERRORS)
        bad = [b for b in boxes if errors is None or not re.search(errors, b)]
        if bad:
            self.fail(f"unexpected error box(es): {bad}")

    def open(self, url: str) -> None:
        self.step(f"open {url}", lambda: self.page.goto(url))
        self.player()

    # ------------------------------------------------------------------ widgets
    def _combo(self, label: str):
        return self.page.get_by_role("combobox", name=label, exact=True)

    def value(self, label: str) -> str:
        """The shown value of a select box."""
        return self._combo(label).input_value()

    def options(self, label: str) -> list[str]:
        """The option labels of a select box or multiselect (the list is closed again)."""
        box = self._open_list(label)
        texts = box.get_by_role("option").all_inner_texts()
        self.page.keyboard.press("Escape")
        box.wait_for(state="detached")
        return [t.strip() for t in texts]

    def _open_list(self, label: str):
        """Open a select box's list with a click in the box, as a user does — and click
        again when it closed at once: Streamlit's box sometimes does so on the first click
        after another widget had the focus (the list gives the focus to an option, the box
        takes it back and closes the list, all within a few ms)."""
        combo, box = self._combo(label), self.page.get_by_role("listbox")
        for _ in range(3):
            self.unfocus()
            self.page.evaluate("window.__open = null")
            combo.click()
            try:
                self.page.wait_for_function(_LIST_OPEN, arg=[300], timeout=3_000, polling=50)
                return box
            except Exception:  # noqa: BLE001 - closed at once (or never opened): again
                pass
        self.fail(f"the list of {label!r} does not stay open")

    def unfocus(self) -> None:
        """Take the focus off any widget, as a click on an empty part of the page does (a
        select box keeps it after a choice, and would take keys meant for the page)."""
        self.page.evaluate("document.activeElement && document.activeElement.blur()")

    def _pick(self, label: str, option: str, done: Callable[[], bool]) -> None:
        """Click ``option`` in the list of ``label`` until ``done()`` (or a run started):
        a click that lands while the list is redrawn (it is when the page re-runs under
        it) is lost, as a user's would be — who clicks again. An option the list does not
        draw (it draws the first few of a long list) is typed to filter it."""
        before = self.watch.requests
        for _ in range(3):
            choice = self._open_list(label).get_by_role("option", name=option, exact=True)
            if not choice.count():
                self.page.keyboard.type(option.split(" (")[0])
            choice.click()
            if self._requested(before, 5_000) or done():
                return
        self.fail(f"choosing {option!r} in {label!r} had no effect")

    def select(self, label: str, option: str, **kw) -> None:
        if self.value(label) == option:
            self.fail(f"{label!r} already shows {option!r}")
        self.step(f"select {label!r} → {option!r}",
                  lambda: self._pick(label, option, lambda: self.value(label) == option), **kw)
        if self.value(label) != option:
            self.fail(f"{label!r} shows {self.value(label)!r}, not {option!r}")

    def chosen(self, label: str) -> list[str]:
        """The chosen values of a multiselect."""
        tags = self._widget("stMultiSelect", label).locator("[data-tag] [title]")
        return [t.get_attribute("title") for t in tags.all()]

    def add(self, label: str, option: str, **kw) -> None:
        self.step(f"add {option!r} to {label!r}",
                  lambda: self._pick(label, option, lambda: option in self.chosen(label)), **kw)
        self._close_list(label)
        if option not in self.chosen(label):
            self.fail(f"{option!r} is not among {label!r}: {self.chosen(label)}")

    def remove(self, label: str, option: str, **kw) -> None:
        button = self._widget("stMultiSelect", label).get_by_role(
            "button", name=f"Remove {option}", exact=True)
        self.step(f"remove {option!r} from {label!r}", button.click, **kw)
        self._close_list(label)
        if option in self.chosen(label):
            self.fail(f"{option!r} is still among {label!r}")

    def _close_list(self, label: str) -> None:
        """Leave a multiselect as a user does: it keeps its list open and the focus after a
        change, and the next click elsewhere would only be taken as leaving it."""
        if self.page.get_by_role("listbox").count():
            self.page.keyboard.press("Escape")
            self.page.get_by_role("listbox").wait_for(state="detached", timeout=10_000)
        self._combo(label).blur()

    def _widget(self, testid: str, label: str):
        return self.page.locator(f'[data-testid="{testid}"]').filter(
            has=self.page.locator('[data-testid="stWidgetLabel"]').get_by_text(
                label, exact=True))

    def radio(self, label: str, option: str, **kw) -> None:
        group = self.page.get_by_role("radiogroup", name=label, exact=True)
        choice = group.locator('[data-testid="stRadioOption"]').filter(
            has=self.page.get_by_text(option, exact=True))
        self.step(f"radio {label!r} → {option!r}", choice.click, **kw)
        if not choice.locator("input").is_checked():
            self.fail(f"{label!r}: {option!r} is not chosen")

    def _check_box(self, label: str):
        return self.page.locator('[data-testid="stCheckbox"]').filter(
            has=self.page.get_by_text(label, exact=True))

    def is_on(self, label: str) -> bool:
        """Whether a toggle or check box is on."""
        return self._check_box(label).locator("input").is_checked()

    def toggle(self, label: str, **kw) -> bool:
        """Flip a toggle or check box; returns its new state."""
        box = self._check_box(label)
        was = self.is_on(label)
        # the switch's track (the input itself is hidden; the label holds a help button)
        self.step(f"toggle {label!r} → {'off' if was else 'on'}",
                  lambda: box.locator("label > div").first.click(), **kw)
        if self.is_on(label) == was:
            self.fail(f"{label!r} did not change")
        return not was

    def _thumb(self, label: str):
        return self.page.get_by_role("group", name=label, exact=True).get_by_role("slider")

    def slider_value(self, label: str) -> float:
        return float(self._thumb(label).input_value())

    def slide(self, label: str, key: str, times: int = 1, **kw) -> float:
        """Press ``key`` (ArrowRight, ArrowLeft, End, Home, …) on a slider's thumb."""
        thumb = self._thumb(label)
        before = self.slider_value(label)

        def press() -> None:
            thumb.focus()
            for _ in range(times):
                thumb.press(key)

        self.step(f"slider {label!r} {before:g} ← {key}×{times}", press, **kw)
        after = self.slider_value(label)
        if after == before:
            self.fail(f"slider {label!r} did not move from {before:g}")
        return after

    def number(self, label: str, value: float | int, **kw) -> None:
        box = self.page.get_by_role("spinbutton", name=label, exact=True)

        def type_in() -> None:
            box.fill(str(value))
            box.press("Enter")

        self.step(f"number {label!r} → {value}", type_in, **kw)
        if float(box.input_value()) != float(value):
            self.fail(f"{label!r} holds {box.input_value()}, not {value}")

    def text(self, label: str, value: str, **kw) -> None:
        """Type ``value`` into a text field (replacing what it holds) and press Enter."""
        box = self.page.get_by_role("textbox", name=label, exact=True)

        def type_in() -> None:
            box.fill(value)
            box.press("Enter")

        self.step(f"text {label!r} → {value!r}", type_in, **kw)
        if box.input_value() != value:
            self.fail(f"{label!r} holds {box.input_value()!r}, not {value!r}")

    def upload(self, label: str, path: Path, **kw) -> None:
        field_ = self.page.locator('[data-testid="stFileUploader"]').filter(
            has=self.page.get_by_text(label, exact=False))
        self.step(f"upload {path.name} as {label!r}",
                  lambda: field_.locator('input[type="file"]').set_input_files(str(path)), **kw)

    def expand(self, title: str) -> None:
        """Open a sidebar expander (no run)."""
        details = self.page.locator('[data-testid="stExpander"] details').filter(
            has=self.page.locator("summary").get_by_text(title, exact=True))
        if details.get_attribute("open") is None:
            details.locator("summary").click()
            self.page.wait_for_function(
                "e => e.open", arg=details.element_handle(), timeout=10_000)

    # ------------------------------------------------------------------ frame player
    def player(self):
        return player_frame(self.page)

    def frame(self) -> int:
        return int(self.player().evaluate("document.body.dataset.frame"))

    def keys(self, *keys: str, rerun: bool = False) -> None:
        """Press keys on the page itself (not in a widget): the player listens there."""
        def press() -> None:
            self.unfocus()  # the page has the focus, not a widget
            for k in keys:
                self.page.keyboard.press(k)

        self.step(f"keys {' '.join(keys)}", press, rerun=rerun)
