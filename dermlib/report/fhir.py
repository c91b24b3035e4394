"""The case as a FHIR R4 ``DiagnosticReport`` (JSON) for clinics that keep records.

What goes in:

* ``status`` ``preliminary``: decision support, never a signed diagnosis.
* ``category`` HL7 v2 table 0074 ``OTH`` (no diagnostic-service section exists for dermatology image analysis)
  and ``code`` as text only: LOINC has no code for an automated skin-photo classification, and a wrong code
  would be worse than none.
* ``subject`` carries the ``data-absent-reason`` extension (``unknown``): DermLens never knows who the patient
  is; the clinic's system attaches the report to its own Patient.
* ``contained``: a ``Device`` for the model (id, name, weights SHA-256, DermLens version) and one
  ``Observation`` per top-k class (calibrated probability, ``valueQuantity`` in %, UCUM) and per risk group,
  each pointing at the Device; ``result`` lists them.
* ``conclusion``: the answer in words with the scope, uncertainty and urgency lines and the disclaimer;
  ``conclusionCode``: the top class as a text-only concept (the Disease Library records no SNOMED codes), only
  when the photo is in scope and the model does not abstain.
* ``presentedForm``: the PDF (base64, ``application/pdf``, size and SHA-1) when it is given.

Validation: ``fhir.resources`` 8.x models R5 at its top level and R4B (4.3.0) under ``fhir.resources.R4B``;
R4 (4.0.1) itself was last the default model set of fhir.resources 6.1.0, which needs pydantic 1. R4B left
``DiagnosticReport``, ``Observation`` and ``Device`` as R4 defined them (R4B's changes are the medication
definition, evidence and subscription resources), and the resource below uses only R4 elements, so
:func:`validate_fhir` checks it against the R4B models, plus the R4 status value set, which those models do not
enforce.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from typing import TYPE_CHECKING, Any

from dermlib.errors import ReportError
from dermlib.report.text import DISCLAIMER_TEXT, OUT_OF_SCOPE_NOTE, format_probability

if TYPE_CHECKING:
    from dermlib.report.case import CaseReport

#: The FHIR version the resource is written for.
FHIR_VERSION = "4.0.1"
#: DiagnosticReport.status codes of R4 (http://hl7.org/fhir/R4/valueset-diagnostic-report-status.html).
R4_REPORT_STATUS = ("registered", "partial", "preliminary", "final", "amended", "corrected", "appended",
                    "cancelled", "entered-in-error", "unknown")
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
UCUM = "http://unitsofmeasure.org"
DEVICE_ID = "model"


def to_fhir(case: CaseReport, pdf: bytes | None = None) -> dict[str, Any]:
    """The case as a FHIR R4 ``DiagnosticReport`` (see the module docstring for what each element holds).

    Args:
        case: A case from :func:`dermlib.report.build_case`.
        pdf: The rendered PDF (:func:`dermlib.report.render_pdf`) to embed as ``presentedForm``; None leaves
            it out.

    Returns:
        The resource as a JSON-ready dict.
    """
    card, pred = case.card, case.prediction
    when = case.created.isoformat(timespec="seconds")
    device_ref = {"reference": f"#{DEVICE_ID}", "display": f"DermLens model {card.id}"}
    observations = []
    for rank, score in enumerate(pred.top_k, 1):
        observations.append(_observation(
            f"class-{rank}", f"Calibrated probability of {score.name}", score.probability, when, device_ref,
            f"Rank {rank} of the model's top {len(pred.top_k)}; class id {score.label}; risk group "
            f"{score.risk_group}."))
    for group, probability in pred.risk.items():
        observations.append(_observation(
            f"risk-{_slug(group)}", f"Calibrated probability of the {group} risk group", probability, when,
            device_ref, f"Sum of the probabilities of the model's {group} classes."))
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": case.report_id,
        "language": "en",
        "text": {"status": "generated", "div": _narrative(case)},
        "contained": [_device(case), *observations],
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{_uuid(case.report_id)}"}],
        "status": "preliminary",
        "category": [{
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "OTH",
                        "display": "Other"}],
            "text": "Dermatology image analysis (decision support)",
        }],
        "code": {"text": "Skin photo analysis by DermLens (machine-learning decision support, not a diagnosis)"},
        "subject": {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "unknown"}]},
        "effectiveDateTime": when,
        "issued": when,
        "result": [{"reference": f"#{o['id']}", "display": o["code"]["text"]} for o in observations],
        "conclusion": conclusion(case),
    }
    if pred.in_scope and not pred.uncertain and pred.top_k:
        resource["conclusionCode"] = [{"text": f"{pred.top_k[0].name} (most likely of the model's classes)"}]
    if pdf is not None:
        resource["presentedForm"] = [{
            "contentType": "application/pdf",
            "language": "en",
            "data": base64.b64encode(pdf).decode("ascii"),
            "size": len(pdf),
            "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode("ascii"),  # FHIR R4 defines SHA-1
            "title": "DermLens case report",
            "creation": when,
        }]
    return resource


def conclusion(case: CaseReport) -> str:
    """The report's conclusion in plain words, the disclaimer included."""
    pred, card = case.prediction, case.card
    parts = ["Decision support, not a diagnosis (preliminary; not reviewed by a clinician)."]
    if not pred.in_scope:
        parts.append(f"OUT OF SCOPE: {pred.scope.message} {OUT_OF_SCOPE_NOTE}")
    if pred.uncertain:
        parts.append("The model abstains (it is not sure about this image): " + "; ".join(pred.reasons) + ".")
    listed = ", ".join(f"{s.name} {format_probability(s.probability)} ({s.risk_group})" for s in pred.top_k)
    parts.append(f"Most likely of the {card.num_classes} conditions model {card.id} knows (calibrated): {listed}.")
    parts.append("Risk groups: " + ", ".join(f"{g} {format_probability(p)}" for g, p in pred.risk.items()) + ".")
    parts.append("Urgency: " + (case.urgency.sentence(pred) if case.urgency is not None else case.urgency_note))
    parts.extend(f"Photo quality: {w.message} {w.advice}" for w in pred.scope.quality)
    parts.append(DISCLAIMER_TEXT)
    return " ".join(p.strip() for p in parts if p.strip())


def fhir_json(case: CaseReport, pdf: bytes | None = None) -> str:
    """:func:`to_fhir` as validated, indented JSON text (what the CLI and the download button write)."""
    resource = to_fhir(case, pdf)
    validate_fhir(resource)
    return json.dumps(resource, indent=2, ensure_ascii=False)


def validate_fhir(resource: dict[str, Any] | str | bytes) -> dict[str, Any]:
    """Check a ``DiagnosticReport`` against the FHIR models (see the module docstring for R4 and R4B).

    Args:
        resource: The resource as a dict, or as JSON text.

    Returns:
        The resource as a dict, as the models read it back (``exclude_none``).

    Raises:
        ReportError: The text is not JSON, or the resource is not a valid R4 DiagnosticReport; the message
            names the failing elements.
    """
    if isinstance(resource, str | bytes):
        try:
            resource = json.loads(resource)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ReportError(f"The FHIR report is not valid JSON: {exc}") from None
    if not isinstance(resource, dict):
        raise ReportError(f"A FHIR DiagnosticReport is a JSON object, not {type(resource).__name__}.")
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport
    from pydantic import ValidationError

    try:
        model = DiagnosticReport.model_validate(resource)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'resource'}: {e['msg']}"
                             for e in exc.errors()[:5])
        raise ReportError(f"The FHIR DiagnosticReport is not valid: {problems}") from None
    if resource.get("status") not in R4_REPORT_STATUS:
        raise ReportError(f"The FHIR DiagnosticReport is not valid: status {resource.get('status')!r} is not one "
                          f"of {', '.join(R4_REPORT_STATUS)}.")
    return json.loads(model.model_dump_json(exclude_none=True))


def _observation(local_id: str, what: str, probability: float, when: str, device: dict[str, str],
                 note: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": local_id,
        "status": "preliminary",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "imaging", "display": "Imaging"}]}],
        "code": {"text": what},
        "effectiveDateTime": when,
        "issued": when,
        "valueQuantity": {"value": round(probability * 100, 2), "unit": "%", "system": UCUM, "code": "%"},
        "method": {"text": "Calibrated softmax output of a machine-learning image classifier"},
        "device": device,
        "note": [{"text": note}],
    }


def _device(case: CaseReport) -> dict[str, Any]:
    card = case.card
    sha = str(card.weights.get("sha256") or "unknown")
    return {
        "resourceType": "Device",
        "id": DEVICE_ID,
        "identifier": [{"type": {"text": "DermLens model id"}, "value": card.id}],
        "deviceName": [{"name": card.name, "type": "model-name"},
                       {"name": "DermLens", "type": "manufacturer-name"}],
        "type": {"text": f"Machine-learning image classifier ({card.architecture_label}); software, not a "
                         "medical device"},
        "version": [{"type": {"text": "weights sha256"}, "value": sha},
                    {"type": {"text": "DermLens"}, "value": case.app_version}],
        "note": [{"text": DISCLAIMER_TEXT}],
    }


def _narrative(case: CaseReport) -> str:
    """The human-readable XHTML the resource carries (FHIR's ``text``)."""
    items = "".join(f"<li>{html.escape(s.name)}: {format_probability(s.probability)} ({html.escape(s.risk_group)})"
                    "</li>" for s in case.prediction.top_k)
    return (f'<div xmlns="http://www.w3.org/1999/xhtml"><p><b>DermLens case report</b> '
            f"({html.escape(case.created.strftime('%Y-%m-%d %H:%M'))} UTC, model {html.escape(case.card.id)})</p>"
            f"<ul>{items}</ul><p>{html.escape(conclusion(case))}</p></div>")


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-") or "group"


def _uuid(hex_id: str) -> str:
    """A 32-hex-digit id in the UUID's 8-4-4-4-12 form (any other id is hashed into one)."""
    import uuid

    try:
        return str(uuid.UUID(hex=hex_id))
    except ValueError:
        return str(uuid.UUID(bytes=hashlib.sha256(hex_id.encode()).digest()[:16]))
