"""Case reports: the PDF (rendered with pdftoppm, read back with pdftotext), the FHIR R4 DiagnosticReport
(validated by fhir.resources), the urgency line, the ``report`` command, the download buttons, and privacy."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dermlib.cli import build_parser, main
from dermlib.errors import DermLensError
from dermlib.inference import build_prediction, predict
from dermlib.models import LoadedModel, load_card, load_model
from dermlib.report import (
    DISCLAIMER_TEXT,
    ReportError,
    build_case,
    fhir_json,
    format_probability,
    render_pdf,
    to_fhir,
    urgency_for,
    validate_fhir,
)
from dermlib.report.text import latin1
from dermlib.scope.checker import ScopeResult
from dermlib.scope.quality import QualityWarning
from dermlib.testing import PROJECT_SKIP, file_snapshot, image_bytes, synthetic_skin_image, write_tiny_model

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2031, 5, 17, 9, 42, 13, tzinfo=UTC)
DISCLAIMER_PHRASE = "DermLens is decision support, not a diagnosis."

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
    reason="poppler-utils (pdftoppm, pdftotext) is not installed: apt-get install poppler-utils",
)


def _pages(pdf: bytes, folder: Path) -> int:
    """Render every page with pdftoppm (fails on a broken file); returns the page count."""
    path = folder / "report.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(path), str(folder / "page")], check=True, timeout=60,
                   capture_output=True)
    pages = sorted(folder.glob("page*.png"))
    assert all(p.stat().st_size > 1000 for p in pages)  # something was drawn
    return len(pages)


def _text(pdf: bytes, folder: Path) -> str:
    """The PDF's text as pdftotext reads it, whitespace collapsed."""
    path = folder / "text.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", str(path), "-"], check=True, timeout=60, capture_output=True, text=True)
    return " ".join(out.stdout.split())


@pytest.fixture(scope="module")
def case(tiny_loaded: LoadedModel):
    image = synthetic_skin_image(7, size=(320, 240))
    return build_case(tiny_loaded, image, top_k=3, faithfulness={"class-0": 0.083}, now=NOW)


@needs_poppler
def test_pdf_renders_and_says_what_it_must(case, tmp_path: Path) -> None:
    pdf = render_pdf(case)
    assert pdf.startswith(b"%PDF")
    assert 1 <= _pages(pdf, tmp_path) <= 2
    text = _text(pdf, tmp_path)
    assert DISCLAIMER_PHRASE in text
    assert latin1(DISCLAIMER_TEXT) in text
    assert "tiny-test" in text and case.report_id in text
    assert NOW.strftime("%Y-%m-%d %H:%M") + " UTC" in text
    assert len(case.prediction.top_k) == 3
    for score in case.prediction.top_k:
        assert score.name in text and format_probability(score.probability) in text
        assert f"{score.name} ({format_probability(score.probability)})" in text  # the heatmap caption
    assert "faithfulness +8 points (faithful)" in text and "faithfulness not measured" in text
    assert "Grad-CAM" in text
    assert "Scope: not checked" in text  # the tiny model has no scope statistics
    assert "Top-1 accuracy by skin type not recorded" in text
    assert "Random weights: for tests only." in text  # the card's limitation
    assert render_pdf(case) == pdf  # the same case, the same bytes


@needs_poppler
def test_pdf_of_an_out_of_scope_uncertain_photo_warns_first(tiny_loaded: LoadedModel, tmp_path: Path) -> None:
    image = synthetic_skin_image(8)
    pred = predict(tiny_loaded, image, top_k=4)
    quality = QualityWarning("blurry", "The photo looks blurred.", "Hold the camera still.", 3.0, 5.0)
    pred = dataclasses.replace(
        pred, uncertain=True, reasons=("the most likely class has only 26% probability (needs at least 50%)",),
        scope=ScopeResult(False, "not_skin", 9.0, 2.0, message="This does not look like a photo of skin.",
                          quality=(quality,)))
    case = build_case(tiny_loaded, image, prediction=pred, now=NOW)
    pdf = render_pdf(case)
    assert 1 <= _pages(pdf, tmp_path) <= 2
    text = _text(pdf, tmp_path)
    assert text.index("OUT OF SCOPE: This does not look like a photo of skin.") < text.index("Most likely conditions")
    assert "means nothing for this image" in text
    assert "does not offer a diagnosis" in text and "needs at least 50%" in text
    assert "Photo quality: The photo looks blurred. Hold the camera still." in text
    assert "Urgency: Not given: the photo is outside what this model can read." in text
    for score in pred.top_k:
        assert format_probability(score.probability) in text
    resource = validate_fhir(to_fhir(case, pdf))
    assert "conclusionCode" not in resource  # no conclusion is coded for a photo the model cannot read
    assert "OUT OF SCOPE" in resource["conclusion"] and "abstains" in resource["conclusion"]


@needs_poppler
def test_measured_limits_and_skin_types_fit_in_two_pages(tmp_path: Path) -> None:
    groups = {"I-II": {"n": 228, "top1_accuracy": 0.6009}, "III-IV": {"n": 142, "top1_accuracy": 0.7394},
              "V-VI": {"n": 44, "top1_accuracy": 0.7045}}
    metrics = {"n": 414, "top1_accuracy": 0.66, "top3_accuracy": 0.85, "balanced_accuracy": 0.63,
               "by_skin_type": {"groups": groups},
               "risk_group": {"malignant": {"n_malignant": 221, "sensitivity": 0.8914, "specificity": 0.899}}}
    limitations = [f"Limitation {i}: " + "a long sentence about what this model cannot do, " * 4 for i in range(12)]
    folder = write_tiny_model(tmp_path / "w" / "long", model_id="long-card",
                              extra={"metrics": metrics, "limitations": limitations})
    loaded = load_model(folder, device="cpu")
    case = build_case(loaded, synthetic_skin_image(9, size=(900, 700)), top_k=4, now=NOW)
    pdf = render_pdf(case)
    assert _pages(pdf, tmp_path) <= 2
    text = _text(pdf, tmp_path)
    for cell in ("I-II: 60% (n=228)", "III-IV: 74% (n=142)", "V-VI: 70% (n=44)"):
        assert cell in text
    assert "sensitivity 89%, specificity 90%" in text
    assert "Limitation 11:" in text


def test_fhir_report_validates_and_round_trips(case) -> None:
    pdf = render_pdf(case)
    resource = to_fhir(case, pdf)
    validated = validate_fhir(resource)
    assert validated["resourceType"] == "DiagnosticReport" and validated["status"] == "preliminary"
    text = fhir_json(case, pdf)
    assert json.loads(text) == resource  # JSON round trip loses nothing
    assert validate_fhir(text) == validated
    assert validate_fhir(json.dumps(validated)) == validated  # the models' own output validates again

    assert resource["id"] == case.report_id and resource["issued"] == "2031-05-17T09:42:13+00:00"
    assert resource["subject"]["extension"][0]["valueCode"] == "unknown"  # DermLens never knows the patient
    form = resource["presentedForm"][0]
    assert form["contentType"] == "application/pdf" and base64.b64decode(form["data"]) == pdf
    assert form["size"] == len(pdf)
    contained = {r["id"]: r for r in resource["contained"]}
    device = contained["model"]
    assert device["resourceType"] == "Device" and device["identifier"][0]["value"] == "tiny-test"
    assert device["version"][0]["value"] == case.card.weights["sha256"]
    for rank, score in enumerate(case.prediction.top_k, 1):
        obs = contained[f"class-{rank}"]
        assert obs["resourceType"] == "Observation" and score.name in obs["code"]["text"]
        assert obs["valueQuantity"] == {"value": round(score.probability * 100, 2), "unit": "%",
                                        "system": "http://unitsofmeasure.org", "code": "%"}
        assert obs["device"]["reference"] == "#model"
    assert {ref["reference"].lstrip("#") for ref in resource["result"]} <= set(contained)
    assert resource["conclusionCode"][0]["text"].startswith(case.prediction.top_k[0].name)
    assert DISCLAIMER_TEXT in resource["conclusion"]
    assert "presentedForm" not in to_fhir(case)  # the PDF is optional


def test_invalid_fhir_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ReportError, match="not valid JSON"):
        validate_fhir("{not json")
    with pytest.raises(ReportError, match="code"):
        validate_fhir({"resourceType": "DiagnosticReport", "status": "final"})
    with pytest.raises(ReportError, match="status 'signed'"):
        validate_fhir({"resourceType": "DiagnosticReport", "status": "signed", "code": {"text": "x"}})
    with pytest.raises(ReportError, match="JSON object"):
        validate_fhir("[]")
    assert issubclass(ReportError, DermLensError)


def test_urgency_is_the_most_urgent_likely_library_entry(tmp_path: Path) -> None:
    classes = [{"id": "melanoma", "name": "Melanoma", "risk_group": "malignant"},
               {"id": "acne", "name": "Acne", "risk_group": "non-neoplastic"},
               {"id": "cellulitis", "name": "Cellulitis", "risk_group": "non-neoplastic"},
               {"id": "class-x", "name": "Unknown thing", "risk_group": "non-neoplastic"}]
    card = load_card(write_tiny_model(tmp_path / "kb", extra={"classes": classes}))
    holder = SimpleNamespace(card=card)

    def urgency(probs: list[float]):
        return urgency_for(build_prediction(holder, np.array(probs), top_k=4), card)

    found, note = urgency([0.15, 0.60, 0.05, 0.20])  # cellulitis (urgent) is under 10%: it does not count
    assert (found.level, found.condition_id, note) == ("soon", "melanoma", "")
    assert found.sentence().startswith("Soon (because of Melanoma, 15.0%): ")
    # Beside a first answer of acne, the line must not read as a diagnosis of melanoma.
    pred = build_prediction(holder, np.array([0.15, 0.60, 0.05, 0.20]), top_k=4)
    assert found.reason(pred) == "to be safe: Melanoma, 15% is among the possibilities, and the most urgent of them"
    found, _ = urgency([0.15, 0.60, 0.12, 0.13])
    assert (found.level, found.condition_id) == ("urgent", "cellulitis")
    found, _ = urgency([0.02, 0.70, 0.03, 0.25])
    assert (found.level, found.condition_id, found.class_name) == ("routine", "acne", "Acne")
    # The line names the class as the result's chart does, whatever the Library entry is called.
    renamed = dataclasses.replace(found, condition_name="Acne vulgaris (the Library's name)")
    assert renamed.because(0) == "Acne, 70%"
    found, note = urgency([0.02, 0.05, 0.03, 0.90])
    assert found is None and "no entry" in note
    pred = dataclasses.replace(build_prediction(holder, np.array([0.15, 0.6, 0.05, 0.2])),
                               scope=ScopeResult(False, "not_skin", 9.0, 2.0, message="Not skin."))
    assert urgency_for(pred, card) == (None, "Not given: the photo is outside what this model can read.")


def test_a_malignant_class_without_a_library_entry_still_gets_an_urgency_line(tmp_path: Path) -> None:
    # A dermoscopy model answers "benign" or "malignant"; the Library has entries for neither.
    classes = [{"id": "benign", "name": "Benign lesion", "risk_group": "benign"},
               {"id": "malignant", "name": "Malignant lesion", "risk_group": "malignant"}]
    card = load_card(write_tiny_model(tmp_path / "dermoscopy", extra={"classes": classes}))
    holder = SimpleNamespace(card=card)
    found, note = urgency_for(build_prediction(holder, np.array([0.03, 0.97]), top_k=2), card)
    assert (found.level, found.condition_id, found.class_name, note) == ("soon", "", "Malignant lesion", "")
    assert found.sentence().startswith("Soon (because of Malignant lesion, 97.0%): Have this lesion examined by a "
                                       "doctor")
    confident = build_prediction(holder, np.array([0.03, 0.97]), top_k=2)
    assert found.reason(dataclasses.replace(confident, uncertain=False)) == "because of Malignant lesion, 97%"
    assert found.reason(dataclasses.replace(confident, uncertain=True)) == (
        "to be safe: Malignant lesion, 97% is the likeliest possibility, though the model is not sure")
    assert "biopsy" in found.when_to_see_doctor
    found, note = urgency_for(build_prediction(holder, np.array([0.95, 0.05]), top_k=2), card)
    assert (found.level, found.class_name, note) == ("routine", "Benign lesion", "")  # never read as an all-clear
    assert "cannot rule a problem out" in found.when_to_see_doctor
    found, note = urgency_for(build_prediction(holder, np.array([0.8, 0.2]), top_k=2), card)
    assert found.level == "soon" and found.probability == pytest.approx(0.2)


def test_malignant_alert_names_a_malignant_class_that_no_single_probability_would(tmp_path: Path) -> None:
    from dermlib.knowledge.urgency import fit_malignant_alert, score_malignant_alert, urgency_flags

    classes = [{"id": "melanoma", "name": "Melanoma", "risk_group": "malignant"},
               {"id": "basal-cell-carcinoma", "name": "Basal cell carcinoma", "risk_group": "malignant"},
               {"id": "acne", "name": "Acne", "risk_group": "non-neoplastic"},
               {"id": "eczema", "name": "Eczema", "risk_group": "non-neoplastic"}]
    malignant = np.array([True, True, False, False])
    # Validation: 40 malignant photos, half of them with their probability split under 10% per class.
    rng = np.random.default_rng(0)
    clear = np.tile([0.6, 0.1, 0.2, 0.1], (20, 1))
    spread = np.column_stack([np.full(20, 0.08), np.linspace(0.02, 0.09, 20), np.full(20, 0.5), np.zeros(20)])
    spread[:, 3] = 1 - spread[:, :3].sum(axis=1)
    benign = rng.dirichlet([0.3, 0.3, 5, 5], size=60)
    probs = np.vstack([clear, spread, benign])
    truth = np.r_[np.ones(40, bool), np.zeros(60, bool)]
    assert urgency_flags(probs, malignant, None)[truth].mean() == 0.5  # the top-3 rule alone: half
    alert = fit_malignant_alert(probs, truth, malignant, sensitivity=0.95)
    flags = urgency_flags(probs, malignant, alert["threshold"])
    assert flags[truth].mean() >= 0.95 and alert["val_sensitivity"] == pytest.approx(flags[truth].mean(), abs=1e-4)
    assert alert["val_specificity"] == pytest.approx((~flags[~truth]).mean(), abs=1e-4)
    # The highest such threshold: one step higher misses one more malignant photo.
    assert urgency_flags(probs, malignant, alert["threshold"] + 1e-4)[truth].mean() < 0.95
    assert fit_malignant_alert(probs, truth, malignant, sensitivity=0.5)["threshold"] is None  # the rule suffices
    assert fit_malignant_alert(probs[:30], truth[:30], malignant) is None  # too few malignant photos to fit on
    assert fit_malignant_alert(probs, truth, np.zeros(4, bool)) is None  # no malignant class
    report = score_malignant_alert(probs, truth, malignant, alert["threshold"])
    assert report["top3_rule_only"]["sensitivity"] == 0.5 and report["with_alert"]["sensitivity"] >= 0.95
    assert report["n_malignant"] == 40 and len(report["with_alert"]["sensitivity_ci95"]) == 2

    card = load_card(write_tiny_model(tmp_path / "alert", extra={
        "classes": classes, "calibration": {"temperature": 1.0, "malignant_alert": {"threshold": 0.15}}}))
    holder = SimpleNamespace(card=card)
    found, note = urgency_for(build_prediction(holder, np.array([0.08, 0.09, 0.5, 0.33]), top_k=3), card)
    assert (found.condition_id, found.class_name, note) == ("basal-cell-carcinoma", "Basal cell carcinoma", "")
    assert found.malignant_total == pytest.approx(0.17)
    assert "malignant conditions together 17.0%, most likely Basal cell carcinoma" in found.sentence()
    found, _ = urgency_for(build_prediction(holder, np.array([0.05, 0.05, 0.5, 0.4]), top_k=3), card)
    assert found.condition_id == "acne" and found.malignant_total is None  # 10% together: under the threshold
    no_alert = load_card(write_tiny_model(tmp_path / "plain", extra={"classes": classes}))
    found, _ = urgency_for(build_prediction(SimpleNamespace(card=no_alert), np.array([0.08, 0.09, 0.5, 0.33]),
                                            top_k=3), no_alert)
    assert found.condition_id == "acne"


def test_disclaimer_matches_the_pages() -> None:
    from dermlib.ui.common import DISCLAIMER

    assert DISCLAIMER.replace("**", "") == DISCLAIMER_TEXT


def test_report_command_writes_both_files(tiny_weights_env: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    img = tmp_path / "lesion.jpg"
    img.write_bytes(image_bytes(synthetic_skin_image(4), "JPEG"))
    pdf, fhir = tmp_path / "out" / "case.pdf", tmp_path / "out" / "case.json"
    pdf.parent.mkdir()
    assert main(["report", str(img), "--pdf", str(pdf), "--fhir", str(fhir), "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {pdf}" in out and f"wrote {fhir}" in out
    assert pdf.read_bytes().startswith(b"%PDF")
    resource = validate_fhir(fhir.read_text())
    assert len([r for r in resource["contained"] if r["id"].startswith("class-")]) == 2
    assert base64.b64decode(resource["presentedForm"][0]["data"]) == pdf.read_bytes()
    assert sorted(p.name for p in pdf.parent.iterdir()) == ["case.json", "case.pdf"]


def test_report_command_refuses_bad_input_cleanly(tiny_weights_env: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not an image")
    out = tmp_path / "case.pdf"
    assert main(["report", str(bad), "--pdf", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {bad}: ") and "not an image" in err[0]
    assert main(["report", str(bad), "--pdf", str(out), "--model", "nope"]) == 2
    assert "No model 'nope'" in capsys.readouterr().err
    assert not out.exists()
    assert "report" in build_parser(["models"]).format_help()  # the placeholder keeps --help complete


def test_building_a_report_writes_nothing_but_the_outputs(tiny_weights_env: Path, tiny_loaded: LoadedModel,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system_tmp = Path(tempfile.gettempdir())
    own_tmp = tmp_path / "tmp"
    own_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(own_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(own_tmp))
    img = tmp_path / "patient.png"
    img.write_bytes(image_bytes(synthetic_skin_image(12)))
    outputs = tmp_path / "out"
    outputs.mkdir()
    started = time.time_ns()
    repo_before = file_snapshot(ROOT, PROJECT_SKIP)

    assert main(["report", str(img), "--pdf", str(outputs / "r.pdf"), "--fhir", str(outputs / "r.json")]) == 0
    from dermlib.ui.report import report_payloads  # the app's path, in memory

    image = synthetic_skin_image(13)
    pdf_bytes, fhir_bytes = report_payloads(tiny_loaded, image, predict(tiny_loaded, image), report_id="f" * 32)
    assert pdf_bytes().startswith(b"%PDF") and json.loads(fhir_bytes())["id"] == "f" * 32

    changed = {p for p, v in file_snapshot(ROOT, PROJECT_SKIP).items() if repo_before.get(p) != v}
    assert not changed, changed
    assert list(own_tmp.rglob("*")) == []
    assert sorted(p.name for p in outputs.iterdir()) == ["r.json", "r.pdf"]
    # Any file written meanwhile in the system's temp folder (other processes write there too) must not hold
    # either report: their ids are in the PDF's metadata and the JSON.
    ids = [json.loads((outputs / "r.json").read_text())["id"].encode(), b"f" * 32]
    assert ids[0] in (outputs / "r.pdf").read_bytes()
    written = [p for p, (size, mtime) in file_snapshot(system_tmp).items()
               if mtime >= started and size < 50 * 2**20 and not p.startswith(str(outputs))]
    for path in written:
        try:
            content = Path(path).read_bytes()
        except OSError:
            continue
        assert not any(i in content for i in ids), path


def test_download_buttons_on_a_page(tiny_model_dir: Path, tiny_loaded: LoadedModel) -> None:
    from streamlit.testing.v1 import AppTest

    script = (
        "from dermlib.inference import predict\n"
        "from dermlib.models import load_model\n"
        "from dermlib.testing import synthetic_skin_image\n"
        "from dermlib.ui.report import report_downloads\n"
        f"loaded = load_model({str(tiny_model_dir)!r}, device='cpu')\n"
        "image = synthetic_skin_image(5)\n"
        "report_downloads(loaded, image, predict(loaded, image, top_k=2), key_prefix='test')\n"
    )
    at = AppTest.from_string(script, default_timeout=120).run()
    assert not at.exception
    buttons = at.get("download_button")
    assert [b.proto.label for b in buttons] == ["Download report (PDF)", "Download FHIR JSON"]
    at.run()  # a rerun keeps the same report id and time (the session's memo), and raises nothing
    assert not at.exception

    # What a click runs: both files from one build, the JSON embedding the very PDF.
    from dermlib.explain import explain
    from dermlib.ui.report import report_payloads

    image = synthetic_skin_image(5)
    pred = predict(tiny_loaded, image, top_k=2)
    maps = explain(tiny_loaded, image, [tiny_loaded.card.class_ids.index(s.label) for s in pred.top_k])
    pdf_bytes, fhir_bytes = report_payloads(tiny_loaded, image, pred, maps, {"class-1": -0.05}, created=NOW)
    resource = json.loads(fhir_bytes())
    validate_fhir(resource)
    assert base64.b64decode(resource["presentedForm"][0]["data"]) == pdf_bytes()
    assert resource["issued"] == "2031-05-17T09:42:13+00:00"
    first = next(o for o in resource["contained"] if o["id"] == "class-1")
    assert first["valueQuantity"]["value"] == round(pred.top_k[0].probability * 100, 2)


@pytest.mark.browser
@needs_poppler
def test_download_buttons_in_a_real_browser(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The deferred downloads as a user gets them: Streamlit runs the callables on click (AppTest cannot)."""
    from tests.browser_helpers import CHROMIUM, CHROMIUM_ARGS, require_browser, streamlit_server

    require_browser()
    from playwright.sync_api import expect, sync_playwright

    script = tmp_path / "report_page.py"
    script.write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "import streamlit as st\n"
        "from dermlib.inference import predict\n"
        "from dermlib.models import load_model\n"
        "from dermlib.testing import synthetic_skin_image\n"
        "from dermlib.ui.report import report_downloads\n"
        "@st.cache_resource\n"
        f"def model():\n    return load_model({str(tiny_model_dir)!r}, device='cpu')\n"
        "image = synthetic_skin_image(5)\n"
        "st.title('Report')\n"
        "report_downloads(model(), image, predict(model(), image, top_k=2), key_prefix='browser')\n"
    )
    with (streamlit_server(script, tmp_path / "streamlit.log", env={"OMP_NUM_THREADS": "1"}) as server,
          sync_playwright() as pw):
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(server.url, wait_until="domcontentloaded")
            pdf_button = page.get_by_role("button", name="Download report (PDF)")
            expect(pdf_button).to_be_visible(timeout=120_000)  # torch and the model load first
            with page.expect_download() as info:
                pdf_button.click()
            assert info.value.suggested_filename.endswith(".pdf")
            pdf = Path(info.value.path()).read_bytes()
            with page.expect_download() as info:
                page.get_by_role("button", name="Download FHIR JSON").click()
            assert info.value.suggested_filename.endswith(".fhir.json")
            resource = json.loads(Path(info.value.path()).read_text())
            expect(page.locator("[data-testid=stException]")).to_have_count(0, timeout=60_000)
        finally:
            browser.close()
    assert 1 <= _pages(pdf, tmp_path) <= 2 and DISCLAIMER_PHRASE in _text(pdf, tmp_path)
    validate_fhir(resource)
    assert base64.b64decode(resource["presentedForm"][0]["data"]) == pdf  # one report, two files
