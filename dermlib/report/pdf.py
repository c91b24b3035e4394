"""The case report as a one- or two-page A4 PDF, drawn in memory with fpdf2.

The layout, top to bottom: the header (date and time in UTC, the model's name, id and weights version), the
disclaimer, the photo beside the results (out-of-scope or uncertainty warning first, the top-k table with
calibrated probabilities and risk groups, the risk-group totals, the urgency line, the scope and quality
checks), the heatmaps with their faithfulness scores, and what the model was measured to do (test metrics,
top-1 accuracy per Fitzpatrick group, limitations). Images go in as JPEG bytes from memory; nothing touches
the disk. The core Helvetica font covers Latin-1 only, so every text passes :func:`~dermlib.report.text.latin1`.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from dermlib.report.text import (
    DISCLAIMER_TEXT,
    OUT_OF_SCOPE_NOTE,
    UNCERTAIN_NOTE,
    format_probability,
    latin1,
)

if TYPE_CHECKING:
    from PIL import Image

    from dermlib.report.case import CaseReport

MARGIN = 12.0  # mm
PAGE_WIDTH = 210.0  # A4
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
PHOTO_WIDTH = 62.0  # the photo's box, mm
GUTTER = 6.0
PHOTO_MAX_PX = 640  # about 260 dpi at PHOTO_WIDTH: sharp in print, light in the file
HEATMAP_MAX_WIDTH = 36.0
JPEG_QUALITY = 85
FONT = "Helvetica"

_AMBER = (255, 243, 205)
_RED = (248, 215, 218)
_GREY = (235, 235, 235)
_BLUE = (222, 235, 247)


class _Document(FPDF):
    """A4 portrait in millimetres with the report's footer on every page."""

    def __init__(self, footer: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._footer = latin1(footer)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=14)
        self.alias_nb_pages()

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(FONT, "", 7)
        self.set_text_color(110, 110, 110)
        self.cell(0, 4, f"{self._footer} - page {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(0, 0, 0)


def render_pdf(case: CaseReport) -> bytes:
    """Draw the case report.

    Args:
        case: A case from :func:`dermlib.report.build_case`.

    Returns:
        The PDF file's bytes (one or two A4 pages). The same case always gives the same bytes.
    """
    card = case.card
    stamp = case.created.strftime("%Y-%m-%d %H:%M")
    pdf = _Document(f"DermLens case report {case.report_id[:8]}, {stamp} UTC: decision support, not a diagnosis")
    pdf.set_title("DermLens case report")
    pdf.set_author("DermLens")
    pdf.set_creator(f"DermLens {case.app_version}")
    pdf.set_subject(latin1(f"Decision support from model {card.id}; not a diagnosis"))
    pdf.set_keywords(f"DermLens report {case.report_id}")  # readable in the file without decompressing a page
    pdf.set_creation_date(case.created)
    pdf.add_page()

    _header(pdf, case, stamp)
    _box(pdf, DISCLAIMER_TEXT, _AMBER, size=8.5, style="B")
    pdf.ln(3)

    top = pdf.get_y()
    photo_bottom = _image(pdf, case.image, MARGIN, top, PHOTO_WIDTH, PHOTO_WIDTH, PHOTO_MAX_PX)
    pdf.set_xy(MARGIN, photo_bottom + 1)
    pdf.set_font(FONT, "", 7)
    pdf.multi_cell(PHOTO_WIDTH, 3.2, "The photo as analysed", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    photo_bottom = pdf.get_y()
    pdf.set_xy(MARGIN + PHOTO_WIDTH + GUTTER, top)
    pdf.set_left_margin(MARGIN + PHOTO_WIDTH + GUTTER)
    _results(pdf, case)
    pdf.set_left_margin(MARGIN)
    pdf.set_xy(MARGIN, max(photo_bottom, pdf.get_y()) + 3)

    if case.heatmaps:
        _heatmaps(pdf, case)
    _measured(pdf, case)
    pdf.ln(2)
    _text(pdf, f"Generated automatically by DermLens {case.app_version} from one photo, with model {card.id} "
               f"(weights {case.model_version}). Status: preliminary; not reviewed or signed by a clinician.",
          size=7.5, style="I")
    return bytes(pdf.output())


def _header(pdf: FPDF, case: CaseReport, stamp: str) -> None:
    card = case.card
    pdf.set_font(FONT, "B", 16)
    pdf.cell(0, 8, "DermLens case report", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _text(pdf, f"Created {stamp} UTC  |  Report {case.report_id}  |  DermLens {case.app_version}", size=8.5)
    _text(pdf, f"Model: {card.name} (id {card.id}; {card.architecture_label}; weights sha256 "
               f"{case.model_version})", size=8.5)
    pdf.ln(2)


def _results(pdf: FPDF, case: CaseReport) -> None:
    """The right-hand column: warnings, the top-k table, risk groups, urgency, photo checks."""
    pred, card = case.prediction, case.card
    if not pred.in_scope:
        _box(pdf, f"OUT OF SCOPE: {pred.scope.message} {OUT_OF_SCOPE_NOTE}", _RED, style="B")
        pdf.ln(1.5)
    if pred.uncertain:
        _box(pdf, f"{UNCERTAIN_NOTE} Reasons: {'; '.join(pred.reasons)}.", _AMBER)
        pdf.ln(1.5)

    _heading(pdf, "Most likely conditions")
    _text(pdf, f"Calibrated probabilities over the {card.num_classes} conditions this model knows.", size=7.5)
    width = PAGE_WIDTH - MARGIN - pdf.l_margin
    cols = (width - 44, 22, 22)
    pdf.set_fill_color(*_GREY)
    pdf.set_font(FONT, "B", 8.5)
    for w, title, align in zip(cols, ("Condition", "Probability", "Risk group"), "LRL", strict=True):
        pdf.cell(w, 5, title, border="B", align=align, fill=True)
    pdf.ln(5)
    pdf.set_font(FONT, "", 8.5)
    for score in pred.top_k:
        pdf.cell(cols[0], 5, _fit(pdf, latin1(score.name), cols[0]), border="B")
        pdf.cell(cols[1], 5, format_probability(score.probability), border="B", align="R")
        pdf.cell(cols[2], 5, latin1(score.risk_group), border="B")
        pdf.ln(5)
    pdf.ln(1)
    totals = ", ".join(f"{group} {format_probability(p)}" for group, p in pred.risk.items())
    _text(pdf, f"Risk groups (probability summed over all classes): {totals}.", size=8)
    if case.track_record:
        _text(pdf, case.track_record, size=7.5)
    if case.member_agreement:
        _text(pdf, case.member_agreement, size=7.5)
    pdf.ln(1.5)

    _heading(pdf, "When to see a doctor")
    if case.urgency is not None:
        _text(pdf, "Urgency: " + case.urgency.sentence(case.prediction), size=8)
        _text(pdf, "From the Disease Library entry of the most urgent condition of at least 10% probability.",
              size=7, style="I")
    else:
        _text(pdf, "Urgency: " + case.urgency_note, size=8)
    pdf.ln(1.5)

    _heading(pdf, "Photo checks")
    scope = pred.scope
    if scope.code == "in_scope":
        _text(pdf, "Scope: in scope (a photo of the kind of skin image this model was trained on).", size=8)
    elif scope.code == "unchecked":
        _text(pdf, "Scope: not checked (this model has no scope statistics).", size=8)
    else:
        _text(pdf, f"Scope: OUT OF SCOPE ({scope.reason}). {scope.message}", size=8, style="B")
    if scope.quality:
        for warning in scope.quality:
            _text(pdf, f"Photo quality: {warning.message} {warning.advice}", size=8)
    else:
        _text(pdf, "Photo quality: no warning.", size=8)


def _heatmaps(pdf: FPDF, case: CaseReport) -> None:
    n = len(case.heatmaps) + 1
    gap = 3.0
    tile = min(HEATMAP_MAX_WIDTH, (CONTENT_WIDTH - gap * (n - 1)) / n)
    if pdf.will_page_break(8 + tile + 12):
        pdf.add_page()
    _heading(pdf, f"Where the model looked ({case.cam_label})")
    top = pdf.get_y() + 0.5
    tiles = [(case.model_view, "The model's view", "")]
    tiles += [(h.overlay, f"{h.name} ({format_probability(h.probability)})", h.faithfulness_text)
              for h in case.heatmaps]
    bottom = top
    for i, (image, caption, faith) in enumerate(tiles):
        x = MARGIN + i * (tile + gap)
        y = _image(pdf, image, x, top, tile, tile, 320)
        pdf.set_xy(x, y + 0.8)
        pdf.set_font(FONT, "B", 7)
        pdf.multi_cell(tile, 3.1, latin1(caption), align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
        if faith:
            pdf.set_font(FONT, "", 6.5)
            pdf.multi_cell(tile, 3.0, latin1(faith), align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
        bottom = max(bottom, pdf.get_y())
    pdf.set_xy(MARGIN, bottom + 1)
    from dermlib.explain.methods import CAM_METHODS, DEFAULT_CAM_METHOD

    note = CAM_METHODS[case.cam_method if case.cam_method in CAM_METHODS else DEFAULT_CAM_METHOD].reading_note
    if any(h.faithfulness is not None for h in case.heatmaps):
        note += (" Faithfulness: how much more the class's probability drops when the map's most highlighted "
                 "pixels are removed than when as many random pixels are (positive = the map shows what the "
                 "model uses).")
    _text(pdf, note, size=7)
    pdf.ln(2)


def _measured(pdf: FPDF, case: CaseReport) -> None:
    card = case.card
    if pdf.will_page_break(30):
        pdf.add_page()
    _heading(pdf, "What this model can and cannot do (measured)")
    m = card.metrics or {}
    if m.get("top1_accuracy") is None:
        _text(pdf, "This model's card holds no test metrics: treat its output with extra caution.", size=8,
              style="B")
    mal = (m.get("risk_group") or {}).get("malignant") or {}
    if mal.get("sensitivity") is not None and mal.get("specificity") is not None:
        _text(pdf, f"Malignant risk group on the {m.get('n', '?')} test images: sensitivity {mal['sensitivity']:.0%}, "
                   f"specificity {mal['specificity']:.0%}.", size=8)

    rows = case.skin_type_accuracy
    pdf.set_font(FONT, "B", 8)
    pdf.cell(48, 4.6, "Top-1 accuracy by skin type", new_x=XPos.RIGHT)
    if not rows:
        pdf.set_font(FONT, "", 8)
        pdf.cell(0, 4.6, "not recorded (the test images carry no Fitzpatrick skin type)",
                 new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    else:
        pdf.set_fill_color(*_BLUE)
        pdf.set_font(FONT, "", 8)
        for r in rows:
            acc = "unmeasured" if r.top1_accuracy is None else f"{r.top1_accuracy:.0%}"
            pdf.cell(44, 4.6, f"{r.group}: {acc} (n={r.n})", border=1, align="C", fill=True)
        pdf.ln(4.6)
    pdf.ln(1)
    pdf.set_font(FONT, "", 7.5)
    for line in case.measured_limits:
        if line.startswith("Top-1 accuracy by Fitzpatrick skin type"):
            continue  # the table above says it
        pdf.set_x(MARGIN)
        pdf.cell(3, 3.5, "-")
        pdf.multi_cell(CONTENT_WIDTH - 3, 3.5, latin1(line), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _heading(pdf: FPDF, text: str) -> None:
    pdf.set_font(FONT, "B", 10)
    pdf.cell(0, 5.5, latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _text(pdf: FPDF, text: str, size: float = 8.5, style: str = "") -> None:
    pdf.set_font(FONT, style, size)
    pdf.multi_cell(0, size * 0.45, latin1(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _box(pdf: FPDF, text: str, colour: tuple[int, int, int], size: float = 8.5, style: str = "") -> None:
    pdf.set_fill_color(*colour)
    pdf.set_font(FONT, style, size)
    pdf.multi_cell(0, size * 0.47, latin1(text), align="L", fill=True, padding=1.5,
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """The text cut with an ellipsis to fit one table cell."""
    room = width - 2 * pdf.c_margin
    if pdf.get_string_width(text) <= room:
        return text
    while text and pdf.get_string_width(text + "...") > room:
        text = text[:-1]
    return text + "..."


def _image(pdf: FPDF, image: Image.Image, x: float, y: float, max_w: float, max_h: float, max_px: int) -> float:
    """Place an image (as JPEG bytes from memory) in a box, keeping its aspect; returns its bottom edge."""
    from PIL import Image as PILImage

    img = image.convert("RGB")
    if max(img.size) > max_px:
        img = img.copy()
        img.thumbnail((max_px, max_px), PILImage.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=False)
    buf.seek(0)
    scale = min(max_w / img.width, max_h / img.height)
    w, h = img.width * scale, img.height * scale
    pdf.image(buf, x=x, y=y, w=w, h=h)
    return y + h
