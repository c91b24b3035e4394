"""Server memory over a tour of every page by several sessions: RSS after each step, and the peak.

Streamlit Community Cloud stops an app at about 2.7 GB. This drives the real pages with Streamlit's
AppTest in one process, which holds what a server holds (the shared model cache, every ``st.cache_*``,
each session's state); it leaves out the web server itself (Tornado and the websockets, about 100 MB in
``benchmarks/load_test.py`` runs). Each of ``--sessions`` sessions, in turn, step by step:

1. Diagnose: uploads a photo (a real Fitzpatrick17k photo when the data root has them, else a synthetic
   one), shows its heatmaps with every explanation method the page offers for the default model, and runs
   the faithfulness check; then the sessions take turns switching to every other model the picker offers
   (Score-CAM where offered for it); the session on the dermoscopy model uploads a PH2 image, so the
   lesion outliner loads and draws its outline.
2. Disease Library: searches for "itchy rings", then opens an entry with its example photos.
3. Dataset Explorer: opens the Fitzpatrick17k data set (when present) and computes the embedding map of
   300 images with the default choice (timed).
4. Model: opens the Model page for every installed model.

``--pages`` visits only some of them (``--pages library``: a server whose visitors only read the Disease
Library), so that each page's own cost can be measured in a fresh process.

Sessions are interleaved step by step (session 1 step 1, session 2 step 1, ...), so caches and session
states of all of them are alive together, as on a server with that many visitors.

    env -u MALLOC_MMAP_THRESHOLD_ -u MALLOC_TRIM_THRESHOLD_ \\
        python benchmarks/bench_pages.py --sessions 4 --data-root ../shared/data [--pages library]

(without the ``MALLOC_*`` variables, as ``scripts/run_app.sh`` starts the server).

Prints RSS (``VmRSS``) after every step, split into anonymous memory (``RssAnon``: the heap, tensors, ONNX
Runtime's sessions) and mapped files (``RssFile``: the pages of torch's and the other native libraries that
were read), and the peak (``VmHWM``) at the end, in MB. The file part depends on how the kernel maps pages
from its cache: a virtual environment installed minutes ago mapped 230 MB more of the same libraries after
the imports, and 330 MB more after the tour, than one that had sat for days (docs/RELIABILITY.md), which is
why the budget is judged on a fresh one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from dermlib.runtime.memory import keep_triton_out

# As streamlit_app.py does, before anything imports torch (dermlib.testing does).
keep_triton_out()

from streamlit.testing.v1 import AppTest  # noqa: E402

from dermlib.explain.methods import CAM_METHODS, unavailable_reason  # noqa: E402
from dermlib.models import get_card, list_models  # noqa: E402
from dermlib.models.registry import default_model_id  # noqa: E402
from dermlib.testing import image_bytes, synthetic_skin_image  # noqa: E402
from dermlib.ui.model_summary import diagnose_models  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "app_pages"
EXPLORER_KEY = "dataset_explorer_"


def status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM, RssAnon, RssFile) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def photo(data_root: Path | None, i: int) -> bytes:
    """The i-th real clinical photo of the data root, else a synthetic one."""
    if data_root is not None:
        files = sorted((data_root / "fitzpatrick17k" / "images").glob("*/*.jpg"))
        if files:
            return files[(i * 97) % len(files)].read_bytes()
    return image_bytes(synthetic_skin_image(i, size=(800, 600)), "JPEG", quality=90)


def dermoscopy_photo(data_root: Path | None) -> bytes | None:
    """A PH2 dermoscopy image's bytes, when the data root has PH2 (for the dermoscopy model's lesion section)."""
    path = data_root / "ph2" / "images" / "IMD064.jpg" if data_root is not None else None
    return path.read_bytes() if path is not None and path.is_file() else None


PAGE_NAMES = ("diagnose", "library", "explorer", "model")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--data-root", type=Path, default=None, help="datasets folder (e.g. ../shared/data)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds allowed per page run")
    parser.add_argument("--pages", default=",".join(PAGE_NAMES),
                        help="comma-separated pages to visit, in tour order (default all: "
                             + ", ".join(PAGE_NAMES) + "); one page alone measures what it costs a "
                             "server whose visitors open only that page")
    args = parser.parse_args(argv)
    pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    if unknown := [p for p in pages if p not in PAGE_NAMES]:
        parser.error(f"unknown page(s) {', '.join(unknown)}; choose from {', '.join(PAGE_NAMES)}")
    if args.data_root is not None:
        os.environ["DERMLENS_DATA_ROOT"] = str(args.data_root)
    data_root = args.data_root if args.data_root is not None and args.data_root.is_dir() else None
    card = get_card(default_model_id())
    methods = [m for m in CAM_METHODS if unavailable_reason(card, m) is None]
    cards = list_models()
    models = [c.id for c in cards]
    sessions = range(args.sessions)
    after: dict[str, float] = {}

    def record(step: str, session: int, seconds: float | None = None) -> None:
        note = f" ({seconds:.1f} s)" if seconds is not None else ""
        print(f"{f'session {session + 1}: {step}{note}':<64} RSS {status_mb('VmRSS'):7.0f} MB   "
              f"peak {status_mb('VmHWM'):7.0f} MB   "
              f"(anonymous {status_mb('RssAnon'):5.0f}, files {status_mb('RssFile'):5.0f})", flush=True)

    def diagnose_page() -> None:
        diagnose = {s: AppTest.from_file(str(PAGES / "diagnose.py"), default_timeout=args.timeout)
                    for s in sessions}
        for s in sessions:
            at = diagnose[s].run()
            at.file_uploader(key="diagnose_upload").upload(f"photo{s}.jpg", photo(data_root, s), "image/jpeg")
            start = time.perf_counter()
            at.run()
            record("Diagnose, photo analysed", s, time.perf_counter() - start)
        for method in methods[1:]:
            for s in sessions:
                start = time.perf_counter()
                diagnose[s].selectbox(key="diagnose_cam_method").set_value(method).run()
                record(f"Diagnose, {CAM_METHODS[method].label}", s, time.perf_counter() - start)
        for s in sessions:
            start = time.perf_counter()
            diagnose[s].toggle(key="diagnose_faithfulness").set_value(True).run()
            record("Diagnose, faithfulness check", s, time.perf_counter() - start)
        # The models the Diagnose picker offers (a card can keep a heavy benchmark model out of it).
        others = [c.id for c in diagnose_models(cards) if c.id != card.id]
        # Every other offered model is visited once, the sessions taking turns (with more models than
        # sessions, some sessions switch twice), so no model's memory goes unmeasured.
        for i, other in enumerate(others):
            s = sessions[i % len(sessions)]
            start = time.perf_counter()
            at = diagnose[s].selectbox(key="diagnose_model").set_value(other).run()
            note = f"Diagnose, switched to {other}"
            offered = [w for w in at.selectbox if w.key == "diagnose_cam_method"]  # none when out of scope
            if offered and unavailable_reason(get_card(other), "scorecam") is None:
                offered[0].set_value("scorecam").run()
                note += " + Score-CAM"
            if get_card(other).task == "dermoscopy" and dermoscopy_photo(data_root) is not None:
                at.file_uploader(key="diagnose_upload").upload("lesion.jpg", dermoscopy_photo(data_root),
                                                               "image/jpeg")
                at.run()
                note += " + a dermoscopy photo (lesion outline)"
            record(note, s, time.perf_counter() - start)

    def library_page() -> None:
        for s in sessions:
            at = AppTest.from_file(str(PAGES / "disease_library.py"), default_timeout=args.timeout).run()
            at.text_input(key="dl_search").input("itchy rings").run()
            record("Disease Library, search", s)
        for s in sessions:
            at = AppTest.from_file(str(PAGES / "disease_library.py"), default_timeout=args.timeout)
            at.query_params["condition"] = ("psoriasis", "acne", "melanoma", "eczema")[s % 4]
            at.run()
            record("Disease Library, entry with example photos", s)

    def explorer_page() -> None:
        for s in sessions:
            at = AppTest.from_file(str(PAGES / "dataset_explorer.py"), default_timeout=args.timeout).run()
            datasets = at.selectbox(key=EXPLORER_KEY + "dataset") if data_root is not None else None
            fitz = [o for o in (datasets.options if datasets is not None else []) if o.startswith("fitzpatrick17k")]
            if fitz:
                if datasets.value != "fitzpatrick17k":
                    datasets.set_value("fitzpatrick17k").run()
                start = time.perf_counter()
                at.button(key=EXPLORER_KEY + "emb_go").click().run()
                record("Dataset Explorer, embedding map of 300", s, time.perf_counter() - start)
            else:
                record("Dataset Explorer (no dataset)", s)

    def model_page() -> None:
        for s in sessions:
            at = AppTest.from_file(str(PAGES / "model.py"), default_timeout=args.timeout).run()
            for model_id in models[1:]:
                at.selectbox(key="model_page_model").set_value(next(c for c in cards if c.id == model_id)).run()
            record(f"Model page, {len(models)} models", s)

    steps = {"diagnose": diagnose_page, "library": library_page, "explorer": explorer_page, "model": model_page}
    print(f"default model {card.id}; methods offered: {', '.join(methods)}; models: {', '.join(models)}")
    print(f"start: RSS {status_mb('VmRSS'):.0f} MB (anonymous {status_mb('RssAnon'):.0f}, "
          f"files {status_mb('RssFile'):.0f})")
    for page in pages:
        steps[page]()
        after[page] = status_mb("VmRSS")
    print("\nafter each page: " + "; ".join(f"{page} {mb:.0f} MB" for page, mb in after.items()))
    print(f"after the tour: RSS {status_mb('VmRSS'):.0f} MB; peak {status_mb('VmHWM'):.0f} MB "
          f"({args.sessions} sessions; pages: {', '.join(pages)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
