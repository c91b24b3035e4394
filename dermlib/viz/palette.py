"""DermLens's one visual language: the colours, the skin-type notation and the layout every figure shares.

Risk groups and metrics take their colours from the Okabe-Ito palette (Okabe & Ito, "Color Universal
Design", 2008, https://jfly.uni-koeln.de/color/), whose eight colours stay distinguishable under the common
colour-vision deficiencies. Red (vermillion) means malignant and nothing else: no metric, curve or marker
is drawn in it. Skin types are drawn in approximate Fitzpatrick skin tones (so a chart reads at a glance)
and always written in Roman numerals, I to VI.

Nothing here imports Streamlit, and plotly only when :func:`style_figure` styles a figure.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import plotly.graph_objects as go

# --- Okabe-Ito (2008) -------------------------------------------------------------------------------
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}

#: Text "unknown", as :data:`dermlib.data.explore.UNKNOWN` (a missing skin type or risk group).
UNKNOWN = "unknown"

# --- neutral greys ----------------------------------------------------------------------------------
WHITE = "#FFFFFF"  # background, separators between stacked segments
GREY_DARK = "#333333"  # text, outlines
GREY = "#777777"  # reference lines (chance, perfect calibration)
GREY_LIGHT = "#BBBBBB"  # unknown values, grid-like furniture
GREY_UNKNOWN = "#9E9E9E"  # an unknown risk group or skin type

# --- risk groups --------------------------------------------------------------------------------------
#: One colour per risk group, everywhere (Diagnose, Dataset Explorer, Model page, Library).
RISK_COLORS: dict[str, str] = {
    "malignant": OKABE_ITO["vermillion"],
    "premalignant": OKABE_ITO["orange"],  # reserved for a precancerous group (e.g. actinic keratosis)
    "benign": OKABE_ITO["blue"],
    "non-neoplastic": OKABE_ITO["bluish green"],
    UNKNOWN: GREY_UNKNOWN,
}
#: The order risk groups are listed in legends and stacked bars: the most serious first.
RISK_ORDER: tuple[str, ...] = ("malignant", "premalignant", "benign", "non-neoplastic", UNKNOWN)
#: The nearest Streamlit named colour (``:blue-badge[...]``, ``st.badge(color=...)``) of each risk group.
RISK_STREAMLIT_COLORS: dict[str, str] = {
    "malignant": "red",
    "premalignant": "orange",
    "benign": "blue",
    "non-neoplastic": "green",
    UNKNOWN: "gray",
}

# --- metrics ----------------------------------------------------------------------------------------
#: Colours of metric series (accuracy, F1, AUC, calibration...), in order: Okabe-Ito without vermillion
#: and orange (malignant and premalignant) and without the two risk-group colours blue and bluish green.
METRIC_COLORS: tuple[str, ...] = (
    OKABE_ITO["sky blue"],
    OKABE_ITO["reddish purple"],
    GREY_DARK,
    OKABE_ITO["yellow"],
)
#: A single series (bars of counts, one curve).
PRIMARY = METRIC_COLORS[0]
#: A marked point on a curve (an operating point).
HIGHLIGHT = OKABE_ITO["black"]
#: Sequential colour scale of heat maps (confusion matrices): light to dark blue, no red.
SEQUENTIAL_SCALE = "Blues"

# --- categories without an order (classes, sources) -------------------------------------------------
#: Colours of unordered categories: Okabe-Ito without vermillion (red means malignant only), yellow (too
#: pale for markers on white) and grey-like black swapped for dark grey.
CATEGORY_COLORS: tuple[str, ...] = (
    OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["bluish green"], OKABE_ITO["reddish purple"],
    OKABE_ITO["sky blue"], GREY_DARK,
)
#: Marker shapes that, with :data:`CATEGORY_COLORS`, give 6 x 7 = 42 distinct markers.
CATEGORY_SYMBOLS: tuple[str, ...] = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star")


# --- skin types -----------------------------------------------------------------------------------
#: Fitzpatrick type as stored ("1".."6", "unknown") -> how it is written everywhere (I..VI).
FITZPATRICK_NAMES: dict[str, str] = {
    "1": "I",
    "2": "II",
    "3": "III",
    "4": "IV",
    "5": "V",
    "6": "VI",
    UNKNOWN: UNKNOWN,
}
#: Approximate skin tones of Fitzpatrick types I-VI, grey for unknown, keyed by the Roman numeral.
SKIN_TYPE_COLORS: dict[str, str] = {
    "I": "#F6D5BD",
    "II": "#E9B894",
    "III": "#CF9A6C",
    "IV": "#A5714A",
    "V": "#77492C",
    "VI": "#45291A",
    UNKNOWN: GREY_LIGHT,
}
#: The same tones keyed by the stored value ("1".."6", "unknown").
FITZPATRICK_COLORS: dict[str, str] = {k: SKIN_TYPE_COLORS[v] for k, v in FITZPATRICK_NAMES.items()}

# --- type -------------------------------------------------------------------------------------------
FONT_FAMILY = "Source Sans Pro, Helvetica, Arial, sans-serif"  # Streamlit's own
FONT_SIZE = 14  # axis titles, legend, hover
TICK_FONT_SIZE = 12  # tick labels, text on bars
TITLE_FONT_SIZE = 17
#: Characters a title line may take before it is broken (about a phone's width at the title font).
TITLE_WRAP = 40


def skin_type_name(value: Any) -> str:
    """Write a Fitzpatrick type the one way DermLens does: ``3``/``"3"`` -> ``"III"``, missing -> unknown.

    Values already in Roman numerals, and pooled groups such as ``"I-II"``, are returned unchanged.
    """
    text = "" if value is None else str(value).strip()
    if text in ("", "<NA>", "nan", "NaN", "None"):  # None, NaN, pandas' NA
        return UNKNOWN
    if text.endswith(".0"):
        text = text[:-2]
    return FITZPATRICK_NAMES.get(text, text)


def skin_type_names(values: Iterable[Any]) -> list[str]:
    """:func:`skin_type_name` of each value."""
    return [skin_type_name(v) for v in values]


def skin_type_order(names: Iterable[str]) -> list[str]:
    """The given skin-type names sorted I, II, ..., VI, then unknown (anything else last, as given)."""
    present = list(dict.fromkeys(names))
    known = [n for n in SKIN_TYPE_COLORS if n in present]
    return known + [n for n in present if n not in SKIN_TYPE_COLORS]


def risk_color(group: str | None) -> str:
    """The colour of a risk group (grey for an unknown or missing group)."""
    return RISK_COLORS.get(group or UNKNOWN, GREY_UNKNOWN)


def risk_order(groups: Iterable[str]) -> list[str]:
    """The given risk groups in :data:`RISK_ORDER` (groups the palette does not know after, as given)."""
    present = list(dict.fromkeys(groups))
    return [g for g in RISK_ORDER if g in present] + [g for g in present if g not in RISK_ORDER]


def category_styles(values: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """A distinct (colour, marker shape) per category, in the given order, for up to 42 categories.

    Colours alone cannot tell 21 or 38 classes apart (plotly's default cycles ten and repeats); each colour is
    used with one shape before any colour repeats with the next shape. Beyond 42 the pairs repeat.

    Returns:
        ``(colour by category, marker symbol by category)`` for plotly's ``color_discrete_map`` and
        ``symbol_map``.
    """
    colors, symbols = {}, {}
    for i, value in enumerate(dict.fromkeys(values)):
        colors[value] = CATEGORY_COLORS[i % len(CATEGORY_COLORS)]
        symbols[value] = CATEGORY_SYMBOLS[(i // len(CATEGORY_COLORS)) % len(CATEGORY_SYMBOLS)]
    return colors, symbols


def is_red(color: str) -> bool:
    """True for a saturated hex colour within 30 degrees of pure red (vermillion, #EF553B, #C0392B...).

    Only :data:`RISK_COLORS` ``["malignant"]`` may be red; tests check every other colour with this.
    """
    import colorsys

    text = color.lstrip("#")
    text = "".join(c * 2 for c in text) if len(text) == 3 else text[:6]
    hue, saturation, value = colorsys.rgb_to_hsv(*(int(text[i : i + 2], 16) / 255 for i in (0, 2, 4)))
    return saturation > 0.45 and value > 0.35 and (hue * 360 <= 30 or hue * 360 >= 335)


def text_color_on(fill: str) -> str:
    """White or dark grey, whichever reads better on the hex colour ``fill`` (WCAG relative luminance)."""
    rgb = [int(fill.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    luminance = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return WHITE if (1.05 / (luminance + 0.05)) >= ((luminance + 0.05) / 0.05) else GREY_DARK


#: The trace types DermLens draws; :func:`white_template` keeps plotly_white's defaults for these only.
TRACE_TYPES = ("bar", "box", "heatmap", "histogram", "pie", "scatter", "scattergl")


@functools.cache
def white_template() -> go.layout.Template:
    """plotly's ``plotly_white`` template, without the defaults of 3-D, map, polar and ternary plots.

    plotly validates a template each time a figure takes it. The full one cost 18 ms per figure on 2 cores
    (for defaults no DermLens chart uses), this one 6 ms, and the figures are drawn the same: a trace or an
    axis takes only its own type's defaults. That matters on the Diagnose page, which draws two charts per
    upload.
    """
    import plotly.graph_objects as go
    import plotly.io as pio

    full = pio.templates["plotly_white"].to_plotly_json()
    layout = {k: v for k, v in full["layout"].items() if k not in ("geo", "polar", "scene", "ternary")}
    data = {k: v for k, v in full["data"].items() if k in TRACE_TYPES}
    return go.layout.Template(layout=layout, data=data)


#: Where a legend goes. "bottom" is for charts in a narrow column, where a legend row above the plot wraps
#: upwards into the title: at the foot of the figure it can wrap freely.
_LEGEND_PLACES: dict[str, dict[str, Any]] = {
    "top": {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"},
    "right": {"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1.0, "yanchor": "top"},
    "bottom": {"orientation": "h", "xref": "container", "x": 0, "xanchor": "left", "yref": "container", "y": 0,
               "yanchor": "bottom"},
}


def style_figure(
    fig: go.Figure, *, legend: bool = True, legend_title: str | None = None, legend_side: str = "top"
) -> go.Figure:
    """Apply the shared layout: white template, readable fonts, a visible legend, labels never clipped.

    Axes get ``automargin`` so long class names and rotated tick labels push the margin out instead of
    being cut off; the legend sits in a row above the plot, below the title (or in a column on the right,
    for long legends).

    Args:
        fig: Any plotly figure; modified in place.
        legend: Show the legend (every DermLens chart has one, naming what its colours mean).
        legend_title: Optional legend title.
        legend_side: ``"top"`` (a row above the plot), ``"right"`` (a column, for many entries) or
            ``"bottom"`` (rows at the foot of the figure, for narrow columns).

    Returns:
        The same figure.
    """
    # Plotly never wraps a title: on a phone a long one ran off the chart. Broken into lines, with room above.
    title = fig.layout.title.text or ""
    lines = title_lines(title)
    extra = (len(lines) - 1) * (TITLE_FONT_SIZE + 12)  # the line, and a gap above a legend row
    # Anchored by its top, a title of several lines started above the figure: placed from the top in pixels.
    place = {"y": 0.98} if len(lines) == 1 else {"yref": "container", "y": 1, "pad": {"t": 22}}
    layout: dict[str, Any] = {
        "template": white_template(),
        "font": {"family": FONT_FAMILY, "size": FONT_SIZE, "color": GREY_DARK},
        "title": {"text": "<br>".join(lines) if title else None, "font": {"size": TITLE_FONT_SIZE}, "x": 0.01,
                  "xanchor": "left", "yanchor": "top", **place},
        "hoverlabel": {"font": {"size": FONT_SIZE}},
        "showlegend": legend,
        "legend": {
            **_LEGEND_PLACES[legend_side],
            "font": {"size": FONT_SIZE},
            "traceorder": "normal",  # as the traces were added (plotly reverses stacked bars otherwise)
            **({"title": {"text": legend_title}} if legend_title else {}),
        },
        "margin": {"l": 10, "r": 20, "t": (90 if legend and legend_side == "top" else 60) + extra,
                   "b": 10,
                   "autoexpand": True},
    }
    fig.update_layout(**layout)
    fig.update_xaxes(automargin=True, tickfont={"size": TICK_FONT_SIZE}, title_font={"size": FONT_SIZE})
    fig.update_yaxes(automargin=True, tickfont={"size": TICK_FONT_SIZE}, title_font={"size": FONT_SIZE})
    return fig


def wrap_label(text: str, width: int = 24) -> str:
    """A bar label broken into lines of about ``width`` characters, so a long class name leaves the bars room."""
    return "<br>".join(textwrap.wrap(text, width)) or text


def title_lines(title: str, width: int = TITLE_WRAP) -> list[str]:
    """A chart title as lines of at most about ``width`` characters (Plotly never wraps one).

    A title with its own ``<br>`` keeps its lines. A long one breaks before its parenthesis where the part
    before it fits ("By Fitzpatrick skin type" / "(skin type unknown: 459)"), else between words.
    """
    if not title:
        return [""]
    if "<br>" in title:
        return title.split("<br>")
    if len(title) <= width:
        return [title]
    cut = title.find(" (")
    if 0 < cut <= width:
        return [title[:cut], *title_lines(title[cut + 1:], width)]
    return textwrap.wrap(title, width, break_on_hyphens=False)
