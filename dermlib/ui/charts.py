"""How the pages draw Plotly figures (kept apart from the figures themselves, which live in dermlib.viz)."""

from __future__ import annotations

from typing import Any

#: Plotly's toolbar (zoom, pan, save) stays visible on touch screens, where it covered chart titles and legends
#: on a phone; dragging still zooms and a double tap resets, so the charts go without it.
CHART_CONFIG = {"displayModeBar": False}


def chart(container: Any, figure: Any, alt: str | None = None, **kwargs: Any) -> Any:
    """Draw a Plotly figure in ``container`` (``st`` or a column) without Plotly's toolbar, named for screen readers.

    Args:
        container: Where to draw it.
        figure: The figure.
        alt: What a screen reader says for it; default: the figure's title (a chart without one gets none).
        **kwargs: Passed on to ``plotly_chart`` (key, selection options).

    Returns:
        What ``plotly_chart`` returns (the selection state where one is asked for).
    """
    if alt is None:
        title = getattr(getattr(figure.layout, "title", None), "text", None) or ""
        alt = " ".join(title.replace("<br>", " ").split()) or None
    return container.plotly_chart(figure, config=CHART_CONFIG, alt=alt, **kwargs)
