"""How the script writes widget values, and when it must not.

Streamlit sends a value the script writes into a widget's state to the browser with the
widget, where it replaces what the user did meanwhile (keys pressed on a slider while the
page was running): so a value is written only for a reason — a first value
(:func:`set_default`), a clamp or filter that changes it (:func:`assign`), a widget that
was hidden (:func:`keep_hidden`). Streamlit forgets the value of a widget that a run does
not draw (a value the script writes stays), and a widget drawn again is new to the
browser, which draws it with its default unless the run that shows it writes its value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import streamlit as st


def set_default(key: str, value: Any) -> None:
    """Give a widget its first value through session state (never both ways at once)."""
    if key not in st.session_state:
        st.session_state[key] = value


def assign(key: str, value: Any, shape: tuple = ()) -> None:
    """Give a widget a value the script decided (a clamp, a filter) only when it differs, or
    when ``shape`` changed: a slider's range is part of its identity, and Streamlit starts
    a slider of a new range at its minimum unless its state is written."""
    seen = st.session_state.get(f"_shape_{key}", shape)
    st.session_state[f"_shape_{key}"] = shape
    if seen != shape or st.session_state.get(key) != value:
        st.session_state[key] = value


def keep_hidden(group: str, shown: str, keys_of: Mapping[str, Iterable[str]]) -> None:
    """Keep the values of the widgets of the choices of ``group`` that are not ``shown``.

    Parameters
    ----------
    group
        Name of the choice (its last shown value is remembered under ``_shown_<group>``).
    shown
        The choice this run draws.
    keys_of
        Widget keys per choice; a key may belong to several choices. Keys of the shown
        choice are written only on the run that switches to it: a write on every run would
        send the value back to the browser over what the user is typing meanwhile.
    """
    marker = f"_shown_{group}"
    switched = st.session_state.get(marker, shown) != shown
    st.session_state[marker] = shown
    mine = set(keys_of.get(shown, ()))
    keep = {k for choice, keys in keys_of.items() if choice != shown for k in keys} - mine
    if switched:
        keep |= mine
    for key in keep:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
