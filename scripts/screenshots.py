"""Refresh the screenshots in docs/screenshots/: every page, in a real browser, on the shipped models.

    .venv/bin/python scripts/screenshots.py --data-root ../shared/data

Needs Debian's chromium and Playwright (what ``bash scripts/test.sh`` installs) and the data root for the
example photos. The Diagnose screenshots use a real photo from the data root, so they show what a user sees;
the photo's source is credited in README.md next to the picture:

* ``diagnose.png``: a Fitzpatrick17k clinical photo (CC BY-NC-SA 3.0, Groh et al., CVPR 2021) on the default
  model, with the faithfulness check opened;
* ``diagnose-dermoscopy.png``: a PH2 dermoscopy image of the outliner's test split (Mendonça et al., EMBC
  2013) on the dermoscopy model, with the lesion outline;
* ``disease-library.png``, ``dataset-explorer.png``, ``model.png``: the other pages.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.browser_helpers import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

TIMEOUT_MS = 180_000
#: A Fitzpatrick17k photo of skin type V (eczema), and a PH2 melanoma.
CLINICAL = "fitzpatrick17k/images/eczema"
DERMOSCOPY = "ph2/images/IMD064.jpg"


def _full_page(page, path: Path) -> None:
    height = page.evaluate("() => Math.max(document.body.scrollHeight,"
                           " document.querySelector('[data-testid=stMain]')?.scrollHeight || 0)")
    page.set_viewport_size({"width": 1280, "height": min(max(int(height) + 40, 900), 7000)})
    page.wait_for_timeout(1500)  # Plotly re-lays out to the new size
    # The pointer stays where the last click was; after the re-layout it may hover an image and show its
    # fullscreen button over the text beside it.
    page.mouse.move(0, 0)
    page.wait_for_timeout(300)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 3000})
    print(f"wrote {path.relative_to(REPO)}")


def _wait_idle(page) -> None:
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=TIMEOUT_MS)
    page.wait_for_timeout(1000)


def _clinical_photo(root: Path) -> Path:
    import pandas as pd

    meta = pd.read_csv(root / "fitzpatrick17k" / "fitzpatrick17k.csv")
    dark = set(meta.loc[meta["fitzpatrick_scale"] == 5, "md5hash"])
    files = sorted((root / CLINICAL).glob("*.jpg"))
    return next((f for f in files if f.stem in dark), files[0])


def main(argv: list[str] | None = None) -> int:
    """Write the screenshots; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    args = parser.parse_args(argv)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # expect() has its own 5 s default; a cold model takes longer

    root, out = Path(args.data_root).resolve(), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clinical, dermoscopy = _clinical_photo(root), root / DERMOSCOPY
    env = {"DERMLENS_DATA_ROOT": str(root)}
    with (tempfile.TemporaryDirectory() as tmp,
          streamlit_server("streamlit_app.py", Path(tmp) / "log", env=env) as srv,
          sync_playwright() as pw):
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 3000})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(srv.url, wait_until="domcontentloaded")
        page.locator("input[type=file]").first.set_input_files(str(clinical))
        expect(page.get_by_text("Where the model looked")).to_be_visible()
        page.set_viewport_size({"width": 1280, "height": 3000})  # Plotly charts below the fold render late
        expect(page.locator("[data-testid=stPlotlyChart]").first).to_be_visible()
        expect(page.get_by_text("Where the model looked")).to_be_visible()
        page.get_by_text("Test whether these heatmaps can be trusted").click()
        expect(page.get_by_text("Random 20% out").first).to_be_visible()
        _wait_idle(page)
        _full_page(page, out / "diagnose.png")

        page.goto(srv.url, wait_until="domcontentloaded")
        page.locator("[data-testid=stSelectbox]").first.click()
        page.get_by_text("Dermoscopy: benign vs malignant").last.click()
        _wait_idle(page)
        page.locator("input[type=file]").first.set_input_files(str(dermoscopy))
        expect(page.get_by_text("What the classifier saw")).to_be_visible()
        _wait_idle(page)
        _full_page(page, out / "diagnose-dermoscopy.png")

        for slug, name, wait_for in (("disease_library?condition=psoriasis", "disease-library", "Example photos"),
                                     ("dataset_explorer", "dataset-explorer", "Dataset Explorer"),
                                     ("model", "model", "Model")):
            page.goto(f"{srv.url}/{slug}", wait_until="domcontentloaded")
            expect(page.get_by_text(wait_for).first).to_be_visible()
            _wait_idle(page)
            _full_page(page, out / f"{name}.png")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
