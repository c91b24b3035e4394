"""Per-session memo for results computed from a user's upload.

Uploads and everything derived from them (the decoded image, probabilities, heatmaps) are kept in the
session's own ``st.session_state``, never in a process-wide cache: one user's photo can never be served
to another user, cannot be probed through cache timing, and is dropped when the session ends. Each
session keeps only its few most recent results, so memory stays bounded however long a tab stays open.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

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
