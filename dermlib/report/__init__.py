"""Case reports: one photo's result as a one- or two-page PDF and as a FHIR R4 ``DiagnosticReport``.

Typical use::

    from dermlib.report import build_case, render_pdf, to_fhir, validate_fhir

    case = build_case(loaded, image, top_k=3)        # predict + heatmaps + urgency + measured limits
    pdf = render_pdf(case)                           # bytes, in memory
    resource = to_fhir(case, pdf)                    # dict; validate_fhir(resource) checks it

The same from the command line: ``python -m dermlib report IMAGE --pdf out.pdf [--fhir out.json]``. Nothing is
written anywhere but the files asked for. Names are imported on first use (PEP 562): rendering needs fpdf2,
validation fhir.resources, building a case torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dermlib._lazy import lazy_exports

_EXPORTS = {
    **{name: "dermlib.report.case" for name in (
        "CaseReport", "Heatmap", "SkinTypeAccuracy", "Urgency", "app_version", "build_case", "faithfulness_verdict",
        "skin_type_accuracy", "urgency_for")},
    "render_pdf": "dermlib.report.pdf",
    **{name: "dermlib.report.fhir" for name in ("ReportError", "conclusion", "fhir_json", "to_fhir", "validate_fhir")},
    **{name: "dermlib.report.text" for name in ("DISCLAIMER_TEXT", "format_probability")},
}

__all__ = [
    "DISCLAIMER_TEXT",
    "CaseReport",
    "Heatmap",
    "ReportError",
    "SkinTypeAccuracy",
    "Urgency",
    "app_version",
    "build_case",
    "conclusion",
    "faithfulness_verdict",
    "fhir_json",
    "format_probability",
    "render_pdf",
    "skin_type_accuracy",
    "to_fhir",
    "urgency_for",
    "validate_fhir",
]

if TYPE_CHECKING:
    from dermlib.report.case import (
        CaseReport,
        Heatmap,
        SkinTypeAccuracy,
        Urgency,
        app_version,
        build_case,
        faithfulness_verdict,
        skin_type_accuracy,
        urgency_for,
    )
    from dermlib.report.fhir import ReportError, conclusion, fhir_json, to_fhir, validate_fhir
    from dermlib.report.pdf import render_pdf
    from dermlib.report.text import DISCLAIMER_TEXT, format_probability


__getattr__ = lazy_exports("dermlib.report", _EXPORTS, globals())
