"""IMDb star ratings (8 classes): tfseq runs beside the majority-class baseline, on the official test split.

    python bench/imdb_rating.py --data ../shared/data/imdb/aclImdb_v1.tar.gz --runs models/imdb_rating-seed1 ...

Prints JSON: the majority class of the training split scored on the 25,000 test reviews (accuracy, macro-F1, mean
absolute error in stars), and for each run folder its test accuracy, macro-F1 and MAE from metrics.json; for a
rating run also its polarity accuracy (a review's predicted stars on the right side of 5), read off its confusion
matrix, which compares with the binary runs' test accuracy.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tfseq.data import imdb  # noqa: E402
from tfseq.data.examples import numeric_values  # noqa: E402
from tfseq.scores import classification_scores  # noqa: E402


def majority(data: str) -> dict:
    """The training split's most frequent rating, predicted for every test review."""
    source, classes = imdb.read_source(data, labels="rating")
    train, test = source["train"].labels, source["test"].labels
    top = int(np.bincount(train, minlength=len(classes)).argmax())
    probs = np.zeros((len(test), len(classes)))
    probs[:, top] = 1.0
    scores = classification_scores(probs, test, classes, ordinal=True)
    return {"class": classes[top], "test_accuracy": scores["accuracy"], "test_macro_f1": scores["macro_f1"],
            "test_mae": scores["mae"], "test_reviews": int(len(test))}


def run_summary(path: str) -> dict:
    metrics = json.loads((Path(path) / "metrics.json").read_text())
    out = {k: metrics.get(k) for k in ("test_accuracy", "test_macro_f1", "test_mae", "test_auc", "epochs",
                                       "best_epoch", "train_minutes")}
    classes = metrics["classes"]
    if numeric_values(classes) is not None:
        high = np.array([float(c) > 5 for c in classes])
        matrix = np.array(metrics["test_confusion"])
        same_side = matrix[np.ix_(high, high)].sum() + matrix[np.ix_(~high, ~high)].sum()
        out["test_polarity_accuracy"] = float(same_side / matrix.sum())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="aclImdb_v1.tar.gz or an aclImdb/ folder")
    parser.add_argument("--runs", nargs="*", default=[], help="finished classify run folders")
    args = parser.parse_args()
    print(json.dumps({"majority_class": majority(args.data), "runs": {r: run_summary(r) for r in args.runs}},
                     indent=1))


if __name__ == "__main__":
    main()
