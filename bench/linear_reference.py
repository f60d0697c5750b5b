"""Linear n-gram references for the IMDb classifiers, on exactly the splits tfseq's runs use, beside those runs.

    pip install -e ".[bench]"     # scikit-learn, for this script only
    python bench/linear_reference.py polarity --data ../shared/data/imdb/aclImdb_v1.tar.gz [--config P] [--runs RUN ...]
    python bench/linear_reference.py rating --data ../shared/data/imdb/aclImdb_v1.tar.gz [--config P] [--runs RUN ...]

polarity: NBSVM-style (Wang & Manning 2012): binarised word 1-3-grams scaled by their naive-Bayes log-count ratio,
then a logistic regression, on the sentiment task's official split (validation = every review of 20% of the
training movies). rating: TF-IDF word 1-2-grams (sublinear tf), multinomial logistic regression, on the classify
task's 8-class star ratings. The split is the one the pipeline --config (default: imdb_best for polarity,
imdb_rating for rating) trains on: its data.val_fraction and seed. In both, C is chosen by validation accuracy only; the model at that C is scored on
test once, and again after refitting on train + validation (the validation movies folded back in). Each run folder
given with --runs is reported beside them from its metrics.json. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tfseq.config import load_config  # noqa: E402
from tfseq.scores import classification_scores  # noqa: E402

# C by validation accuracy; each grid reaches past the best C found on this split in both directions.
C_GRID = {"polarity": (0.003, 0.01, 0.03, 0.1, 0.3, 1.0), "rating": (0.3, 1.0, 3.0, 10.0, 30.0)}
# The pipelines the references stand beside, whose splits they use.
PIPELINE = {"polarity": "imdb_best", "rating": "imdb_rating"}
# Words and each punctuation mark ("!" and "?" carry sentiment), lowercased, HTML line breaks removed.
TOKEN_PATTERN = r"(?u)\w+|[^\w\s]"
BREAKS = re.compile(r"<br\s*/?>")


def splits(task: str, data: str, config: str) -> tuple[dict, list[str]]:
    """The train / val / test texts and class ids that `python -m tfseq.train TASK --config CONFIG --data DATA`
    trains on.

    Returns:
        ({split: (texts, labels)}, class names).
    """
    from tfseq.tasks.base import Task
    from tfseq.tasks.registry import get_task

    overrides = [f"data.path={data}"] + (["data.labels=rating"] if task == "classify" else [])
    cfg = load_config(task, config, overrides)
    reader = get_task(task).task.__new__(get_task(task).task)
    Task.__init__(reader, cfg)  # read_splits needs only the config: the splits without the encoding
    found, classes, _ = reader.read_splits()
    return {name: ([BREAKS.sub(" ", t).lower() for t in part.texts], np.asarray(part.labels))
            for name, part in found.items()}, list(classes)


def nb_features(train_x, train_y):
    """The naive-Bayes log-count ratio r of each feature (Wang & Manning's alpha = 1) on binarised features."""
    pos = np.asarray(train_x[train_y == 1].sum(0)).ravel() + 1.0
    neg = np.asarray(train_x[train_y == 0].sum(0)).ravel() + 1.0
    return np.log((pos / pos.sum()) / (neg / neg.sum()))


def fit_and_score(kind: str, data: dict, classes: list[str]) -> dict:
    """Chooses C on validation, scores test, refits on train + val and scores test again."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    if kind == "polarity":
        vectorizer = CountVectorizer(ngram_range=(1, 3), binary=True, token_pattern=TOKEN_PATTERN, min_df=2,
                                     lowercase=False)
    else:
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=TOKEN_PATTERN, min_df=2,
                                     lowercase=False)

    def features(train_texts, train_y, others):
        x = vectorizer.fit_transform(train_texts)
        rest = [vectorizer.transform(t) for t in others]
        if kind == "polarity":
            scale = sp.diags(nb_features(x, train_y))
            x, rest = x @ scale, [r @ scale for r in rest]
        return x, rest

    def model(c):
        return LogisticRegression(C=c, max_iter=1000, solver="liblinear" if kind == "polarity" else "lbfgs")

    (train_t, train_y), (val_t, val_y), (test_t, test_y) = data["train"], data["val"], data["test"]
    x, (vx, tx) = features(train_t, train_y, [val_t, test_t])
    by_c = {}
    for c in C_GRID[kind]:
        clf = model(c).fit(x, train_y)
        by_c[c] = (float((clf.predict(vx) == val_y).mean()), clf)
        print(f"{kind}: C={c}: validation accuracy {by_c[c][0]:.4f}", file=sys.stderr, flush=True)
    best = max(C_GRID[kind], key=lambda c: by_c[c][0])
    ordinal = kind == "rating"

    def scores(clf, features_, labels):
        s = classification_scores(clf.predict_proba(features_), labels, classes, ordinal)
        return {k: s[k] for k in ("accuracy", "macro_f1", "mae") if k in s}

    fitted_seconds = time.perf_counter() - started
    out = {"features": x.shape[1], "C": best, "val_accuracy_by_C": {str(c): by_c[c][0] for c in C_GRID[kind]},
           "test": scores(by_c[best][1], tx, test_y), "minutes_for_the_grid": round(fitted_seconds / 60, 2)}
    started = time.perf_counter()
    x, (tx,) = features(train_t + val_t, np.concatenate([train_y, val_y]), [test_t])
    out["test_train_plus_val"] = scores(model(best).fit(x, np.concatenate([train_y, val_y])), tx, test_y)
    out["minutes_refit"] = round((time.perf_counter() - started) / 60, 2)
    return out


def run_summary(path: str) -> dict:
    """A tfseq run's test figures, from its metrics.json, and whether it trained on validation too (data.fold_val:
    then compare it with the reference's refit)."""
    metrics = json.loads((Path(path) / "metrics.json").read_text())
    config = tomllib.loads((Path(path) / "config.toml").read_text())
    summary = {k: metrics[k] for k in ("test_accuracy", "test_macro_f1", "test_mae", "val_accuracy", "train_minutes",
                                       "best_epoch", "epochs") if k in metrics}
    return {**summary, "fold_val": bool(config["data"].get("fold_val", False))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("polarity", "rating"),
                        help="polarity: NBSVM-style on the sentiment task's split; rating: TF-IDF LR on 8 star classes")
    parser.add_argument("--data", required=True, help="aclImdb_v1.tar.gz or an aclImdb/ folder")
    parser.add_argument("--config", help="the pipeline whose split (data.val_fraction, seed) the reference uses "
                        "(default: imdb_best for polarity, imdb_rating for rating)")
    parser.add_argument("--runs", nargs="*", default=[], help="finished tfseq run folders to report beside it")
    args = parser.parse_args()
    config = args.config or PIPELINE[args.kind]
    data, classes = splits("sentiment" if args.kind == "polarity" else "classify", args.data, config)
    sizes = {name: len(part[0]) for name, part in data.items()}
    out = {"kind": args.kind, "config": config, "reviews": sizes, "date": time.strftime("%Y-%m-%d"),
           "reference": fit_and_score(args.kind, data, classes), "runs": {r: run_summary(r) for r in args.runs}}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
