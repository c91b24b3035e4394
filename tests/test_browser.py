"""End to end in a real browser: upload a photo on Diagnose and see the charts and heatmaps.

AppTest cannot exercise a real file upload or the rendering of images and Plotly charts; this test
does, with headless Chromium driven by Playwright against ``streamlit run streamlit_app.py``. It saves
a full-page screenshot to ``test-artifacts/diagnose.png`` (git-ignored).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from dermlib.config import WEIGHTS_ENV
from dermlib.testing import synthetic_skin_image, write_tiny_model
from tests.browser_helpers import ARTIFACTS_DIR, CHROMIUM, CHROMIUM_ARGS, require_browser, streamlit_server

pytestmark = pytest.mark.browser

# Generous for a 2-core machine that is busy with other work; a quiet machine needs about 15 s.
RENDER_TIMEOUT_MS = 60_000


@contextlib.contextmanager
def _app_page(tmp_path: Path, path: str = "") -> Iterator[tuple[object, object]]:
    """The app served on a tiny four-class model and a Chromium page open at ``path``: (page, server).

    On leaving, the server must still be running: nothing the page did may have stopped it.
    """
    from playwright.sync_api import sync_playwright

    weights = tmp_path / "weights"
    write_tiny_model(weights / "tiny-test", model_id="tiny-test", num_classes=4)
    env = {WEIGHTS_ENV: str(weights), "OMP_NUM_THREADS": "1"}
    with streamlit_server("streamlit_app.py", tmp_path / "streamlit.log", env=env) as server:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                page.set_default_timeout(RENDER_TIMEOUT_MS)
                page.goto(server.url + path, wait_until="domcontentloaded")
                yield page, server
            finally:
                browser.close()
        assert server.process.poll() is None, server.log()


def test_diagnose_upload_shows_charts_and_heatmaps(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect

    photo = tmp_path / "lesion.png"
    synthetic_skin_image(seed=7, size=(320, 240)).save(photo)
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    screenshot = ARTIFACTS_DIR / "diagnose.png"
    screenshot.unlink(missing_ok=True)

    with _app_page(tmp_path) as (page, server):
        expect(page.get_by_role("heading", name="Diagnose")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
        expect(page.get_by_text("decision support, not a diagnosis")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
        # st.navigation is in charge: titled pages in the header (not file names).
        nav = page.locator("[data-testid=stTopNav]")
        expect(nav.get_by_text("Disease Library")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
        expect(nav.get_by_text("streamlit app")).to_have_count(0)
        page.locator("input[type=file]").first.set_input_files(str(photo))

        # The upload is accepted and classified: both Plotly charts render.
        charts = page.locator("[data-testid=stPlotlyChart]")
        expect(charts).to_have_count(2, timeout=RENDER_TIMEOUT_MS)
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=RENDER_TIMEOUT_MS)
        # The model view, the photo and one heatmap per listed class (top 3 of 4), and the colour bar.
        images = page.locator("[data-testid=stImage]")
        expect(images).to_have_count(6, timeout=RENDER_TIMEOUT_MS)  # + the colour bar
        expect(page.get_by_text("What the model sees")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
        heatmap_captions = page.locator("[data-testid=stImageCaption]").filter(has_text="%")
        expect(heatmap_captions).to_have_count(3, timeout=RENDER_TIMEOUT_MS)
        for i in range(3):
            assert "Class " in heatmap_captions.nth(i).inner_text()
        # Every image actually decoded in the browser (not a broken <img>).
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=stImage] img')]"
            ".every(img => img.complete && img.naturalWidth > 0)"
        )
        expect(page.locator("[data-testid=stException]")).to_have_count(0, timeout=RENDER_TIMEOUT_MS)
        assert "cannot be used" not in page.inner_text("body")

        # Streamlit scrolls inside its main container: grow the viewport so the capture is whole.
        height = page.evaluate(
            "() => Math.max(document.body.scrollHeight,"
            " document.querySelector('[data-testid=stMain]')?.scrollHeight || 0)"
        )
        page.set_viewport_size({"width": 1280, "height": min(max(int(height) + 40, 1000), 6000)})
        page.wait_for_timeout(500)  # let Plotly re-layout to the new size
        page.screenshot(path=str(screenshot), full_page=True)

        # A trip to another page through the navigation and back keeps the photo and its result
        # (Streamlit forgets the uploader's file when its page is not drawn; the page keeps it).
        nav.get_by_text("Disease Library").click()
        expect(page.get_by_role("heading", name="Disease Library")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
        nav.get_by_text("Diagnose").click()
        expect(page.get_by_text("Your photo from before (lesion.png) is shown again")).to_be_visible(
            timeout=RENDER_TIMEOUT_MS)
        expect(page.locator("[data-testid=stPlotlyChart]")).to_have_count(2, timeout=RENDER_TIMEOUT_MS)

        # A deep link from a prediction opens that condition's entry, even on a first visit.
        page.goto(server.url + "/disease_library?condition=eczema", wait_until="domcontentloaded")
        expect(page.get_by_role("heading", name="Atopic eczema (atopic dermatitis)")).to_be_visible(
            timeout=RENDER_TIMEOUT_MS)

    assert screenshot.stat().st_size > 20_000


def test_a_bookmarked_diagnose_address_opens_the_diagnose_page(tmp_path: Path) -> None:
    """Streamlit serves the default page only at "/"; /diagnose used to answer "Page not found"."""
    require_browser()
    from playwright.sync_api import expect

    with _app_page(tmp_path, "/diagnose") as (page, _server):
        expect(page.get_by_text("Photo of the skin condition")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
        assert "does not seem to exist" not in page.inner_text("body")
