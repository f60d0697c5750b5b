"""A trained tagger beside the most-frequent-tag reference, on the same test sentences, in the same run.

    python bench/tag_reference.py models/<run>

Rebuilds the run's splits from its config (the same source, derivation, carve and seed), fits the reference on
the training sentences (each word's most frequent training tag, looked up as the model looks words up; a word
never seen in training gets the most frequent tag overall), re-tags the test sentences with the run's model, and
scores both with the same scorer: token accuracy, micro-F1 over the tags other than O, macro-F1, chunk F1 for
BIO tags, and for truecasing the accuracy over words that are not sentence-initial. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # this checkout's tfseq, as `python -m tfseq.train` run from it uses
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def most_frequent_tags(train, lowercase: bool):
    """A function from a sentence's tokens to the reference's tags, fitted on the training sentences."""
    counts: dict[str, Counter] = defaultdict(Counter)
    overall: Counter = Counter()
    for tokens, tags in zip(train.tokens, train.tags):
        for token, tag in zip(tokens, tags):
            counts[token.lower() if lowercase else token][tag] += 1
            overall[tag] += 1
    fallback = overall.most_common(1)[0][0]
    best = {word: found.most_common(1)[0][0] for word, found in counts.items()}
    return lambda tokens: [best.get(t.lower() if lowercase else t, fallback) for t in tokens]


def measures(scores: dict, masked: dict | None) -> dict:
    keep = {k: round(v, 4) for k, v in scores.items() if isinstance(v, float)}
    if "chunks" in scores:
        keep["chunk_f1"] = round(scores["chunks"]["f1"], 4)
    if masked is not None:
        keep["accuracy_non_initial"] = round(masked["accuracy"], 4)
    return keep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a finished tag run folder")
    args = parser.parse_args()

    from tfseq.runs import load_trained
    from tfseq.tag_scores import tag_scores
    from tfseq.tasks.tag import TagTask, non_initial_words

    trained = load_trained(args.run, tool="predict")
    started = time.perf_counter()
    task = TagTask(trained.cfg)
    if task.vocab != trained.vocab or task.classes != trained.classes:
        sys.exit(f"{args.run}: its data has changed since training (the vocabulary or tags differ); nothing to compare")
    read = time.perf_counter() - started
    test = task.splits["test"]
    names = task.classes + sorted({tag for tags in test.tags for tag in tags} - set(task.classes))
    mask = non_initial_words(test.tokens) if trained.cfg.data.derive == "truecase" else None

    def score(predicted):
        return measures(tag_scores(test.tags, predicted, names),
                        tag_scores(test.tags, predicted, names, mask=mask) if mask else None)

    started = time.perf_counter()
    reference = most_frequent_tags(task.splits["train"], trained.cfg.data.lowercase)
    ours_reference = score([reference(tokens) for tokens in test.tokens])
    reference_seconds = time.perf_counter() - started
    started = time.perf_counter()
    ours = score(task.predict(trained.model, "test"))
    tag_seconds = time.perf_counter() - started
    metrics = json.loads((Path(args.run) / "metrics.json").read_text())
    result = {
        "run": str(args.run), "data": task.data_name(), "test_sentences": len(test),
        "test_tokens": sum(len(t) for t in test.tokens), "tags": task.classes,
        "read_seconds": round(read, 1),
        "reference": {"name": "most frequent training tag per word", **ours_reference,
                      "seconds": round(reference_seconds, 1)},
        "model": {"name": trained.cfg.pipeline, **ours, "train_minutes": metrics.get("train_minutes"),
                  "tag_seconds": round(tag_seconds, 1)},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
    }
    for key in ("f1_non_O", "accuracy", "accuracy_non_initial", "chunk_f1"):
        if key in ours:
            result[f"{key}_gain"] = round(ours[key] - ours_reference[key], 4)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
