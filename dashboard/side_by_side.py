"""View 1 — side by side: the frame, its full, spatial and temporal relevance, one scrubber.

The pictures live in the frame player (:mod:`dashboard.player`): every frame of every
method (and of a second model) is sent once and scrubbed in the browser. This view adds
the legend in words, and says which frame the views below it show.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from xai_core.results import Explanation

from .display import scale_sentence, shown_kind, units
from .player import Group, render_player
from .settings import Settings


def render_view(expl: Explanation, settings: Settings, groups: Sequence[Group],
                fps: float) -> int:
    """The player and its legend; returns the frame the server-side views show."""
    t = render_player(groups, settings, fps)
    split = ("Full = spatial + temporal: spatial is what one frame's appearance alone explains "
             "(the frame repeated, no motion); temporal is the rest, the part due to motion."
             if any(r.decomposed for r in expl.methods.values()) else
             "Full relevance only: the spatial / temporal split was not computed.")
    unit_words = (units(expl, "") if expl.options.normalise == "max-abs" else
                  "in each method's own units")
    motion = ("The last column shows selective relevance (voxels whose relevance changes "
              "sharply in time)." if shown_kind(settings) == "selective" else "")
    st.caption(
        f"**Red = evidence for “{expl.target_name}”, blue = evidence against**, no colour = no "
        f"relevance. {split} {motion} {scale_sentence(settings)} The colour bars give the "
        f"values, {unit_words}.")
    st.caption(f"**The plot, the method grid and the export below show frame {t}.** They "
               "follow the player when you press ⟳ Sync or pause playback (stepping and "
               "playing stay in your browser); a click on a point of the per-frame plot "
               "moves the player there.")
    for group in groups:
        for method, message in group.errors.items():
            where = f" ({group.title})" if group.title else ""
            st.error(f"**{method}{where} could not be computed.** {message} The other methods "
                     "are shown.")
    return t
