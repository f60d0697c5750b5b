"""A trained language model beside interpolated Kneser-Ney n-gram models of the same training text, scored on the
same held-out text in the same run.

    python bench/lm_reference.py models/<run> [--orders 3 4 5]

Rebuilds the run's training and held-out id streams from its config (the same corpus, split, tokens and
vocabulary, <unk> and end-of-document ids included), re-scores the run's model on the held-out stream (state
carried, as `metrics.json`'s val_loss), fits each n-gram order on the training stream (bench/kneser_ney.py) and
scores it on the same held-out ids. Per model: nats per token, perplexity, bits per held-out character. Prints one
JSON object.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This checkout's tfseq, as `python -m tfseq.train` run from it uses (not another one installed in editable mode).
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from kneser_ney import KneserNey  # noqa: E402


def scores(total: float, count: int, chars: int, seconds: float) -> dict:
    loss = total / count
    return {"loss": round(loss, 4), "perplexity": round(math.exp(loss), 2),
            "bpc": round(total / chars / math.log(2), 4), "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a finished language-model run folder")
    parser.add_argument("--orders", type=int, nargs="+", default=[3, 4, 5], help="n-gram orders; an order whose "
                        "keys would overflow int64 (vocabulary ** order > 2^63) is skipped (default: 3 4 5)")
    args = parser.parse_args()

    from tfseq.models.streaming import StreamScorer
    from tfseq.runs import RunFolder, load_trained
    from tfseq.tasks.lm import LMTask

    trained = load_trained(args.run, tool="sample")
    cfg = trained.cfg
    started = time.perf_counter()
    task = LMTask(cfg)
    if task.vocab != trained.vocab:
        sys.exit(f"{args.run}: its data has changed since training (the vocabulary differs); nothing to compare")
    read = time.perf_counter() - started
    chars, count = task.val_chars, len(task.val_ids) - 1
    started = time.perf_counter()
    total, scored = StreamScorer(cfg.model, task.vocab.size, task.val_ids)(trained.model)
    assert scored == count
    result = {
        "run": str(args.run), "unit": cfg.data.unit, "vocab": task.vocab.size,
        "train_tokens": len(task.train_ids), "val_tokens": count, "val_chars": chars,
        "unk_rate_val": round(float((task.val_ids == 0).mean()), 4) if cfg.data.unit == "word" else 0.0,
        "read_seconds": round(read, 1),
        "model": {**scores(total, count, chars, time.perf_counter() - started),
                  "train_minutes": json.loads(RunFolder(args.run).metrics.read_text()).get("train_minutes")},
    }
    for order in args.orders:
        if task.vocab.size ** order > 2**63:  # n-gram keys are int64
            result[f"kneser_ney_{order}"] = {"skipped": f"{task.vocab.size} ** {order} n-gram keys overflow int64"}
            continue
        started = time.perf_counter()
        lm = KneserNey(order).fit(task.train_ids, task.vocab.size)
        nats, n = lm.nll(task.val_ids)
        result[f"kneser_ney_{order}"] = scores(nats, n, chars, time.perf_counter() - started)
        result[f"perplexity_vs_kn{order}"] = round(math.exp(total / count) / math.exp(nats / n) - 1, 4)
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
