"""Per-session memo for results computed from a user's upload.

Uploads and everything derived from them (the decoded image, probabilities, heatmaps) are kept in the
session's own ``st.session_state``, never in a process-wide cache: one user's photo can never be served
to another user, cannot be probed through cache timing, and is dropped when the session ends. Each
session keeps only its few most recent results, so memory stays bounded however long a tab stays open.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

import streamlit as st

T = TypeVar("T")

#: Results each session keeps per kind. A decoded photo (up to 1024 px, ~2.4 MB) is only reused while the
#: same photo stays on screen; predictions are tiny; heatmaps (~0.8 MB for three) are kept for a few
#: methods so switching back is instant. Sessions linger for server.disconnectedSessionTTL (120 s) after
#: their tab closes, so these limits set the server's memory per recent visitor: about 8 MB.
MAX_ENTRIES = {"image": 2, "prediction": 8, "cams": 4}
DEFAULT_MAX_ENTRIES = 4
_PREFIX = "_dermlens_memo_"


def session_memo(kind: str, key: Hashable, compute: Callable[[], T], max_entries: int | None = None) -> T:
    """Return the value memoised in this session under ``(kind, key)``, computing it on a miss.

    Exceptions are not memoised: a failed computation is retried on the next rerun.

    Args:
        kind: The namespace, e.g. ``"prediction"``.
        key: Identifies the inputs (content digests, model key, options).
        compute: Produces the value on a miss.
        max_entries: How many values of this kind the session keeps (least recently used go first); default
            from :data:`MAX_ENTRIES`.

    Returns:
        The memoised or freshly computed value.
    """
    store: OrderedDict = st.session_state.setdefault(_PREFIX + kind, OrderedDict())
    if key in store:
        store.move_to_end(key)
        return store[key]
    value = compute()
    store[key] = value
    limit = max_entries if max_entries is not None else MAX_ENTRIES.get(kind, DEFAULT_MAX_ENTRIES)
    while len(store) > limit:
        store.popitem(last=False)
    return value


def clear_session_memo() -> None:
    """Forget every memoised upload result of this session."""
    for name in [k for k in st.session_state if str(k).startswith(_PREFIX)]:
        del st.session_state[name]


#: Where a page's widget values and its photo are kept while the user is on another page.
_KEPT = "_dermlens_kept_"


def keep_widget(key: str, options: Sequence[Any] | None = None) -> None:
    """Call before drawing the widget ``key``: it gets back the value it had when the user left the page.

    Streamlit forgets the state of every widget that a run does not draw, so a trip to another page of the
    app would reset the Diagnose page's model, method and options. Each run copies the widget's value aside
    (under a key that is not a widget's); when the widget comes back without state, the copy is restored.

    Args:
        key: The widget's key.
        options: The values the widget offers now; a kept value no longer among them is not restored.
    """
    if key in st.session_state:
        st.session_state[_KEPT + key] = st.session_state[key]
        return
    if _KEPT + key in st.session_state:
        value = st.session_state[_KEPT + key]
        if options is None or value in options:
            st.session_state[key] = value


def keep_photo(widget_key: str, upload: Any, had_state: bool) -> tuple[Any, bool]:
    """The photo to analyse: the one in the widget, else the one the user left the page with.

    Args:
        widget_key: The uploader's or camera's key (a photo is kept per source).
        upload: What the widget returned this run.
        had_state: Whether the widget had state before it was drawn this run. With state and no file, the
            user removed the photo, and the kept one is forgotten; without state, the page was just opened
            again, and the kept one comes back.

    Returns:
        (the photo or None, whether it is the kept one rather than the widget's).
    """
    kept = _photo_key(widget_key)
    if upload is not None:
        st.session_state[kept] = upload  # the same object, not a copy of its bytes
        return upload, False
    if had_state:
        st.session_state.pop(kept, None)
        return None, False
    photo = st.session_state.get(kept)
    return photo, photo is not None


def forget_photo(widget_key: str) -> None:
    """Drop the kept photo of this uploader or camera (the user asked to clear it)."""
    st.session_state.pop(_photo_key(widget_key), None)


def _photo_key(widget_key: str) -> str:
    return f"{_KEPT}photo_{widget_key}"
