"""Char-LM held-out loss at a fixed wall-clock budget: the textbook recipe beside a tfseq pipeline.

    python bench/charlm_budget.py --minutes 10 [--config charlm_quick] [--book PATH] [--run-dir DIR]
                                  [--skip-reference] [--set SECTION.KEY=VALUE ...]

Runs `python -m tfseq.train charlm --config CONFIG` capped at the budget (train.max_minutes: it stops before an
epoch that would cross it) and then `../shared/bench/seed_charlm.py BOOK MINUTES` (the textbook's code: it starts
epochs until the budget is spent and prints the held-out loss after each), one after the other. Both hold out the
last 10% of the same text. The textbook scores back-to-back windows of 40 characters; tfseq reports that same
measure (val_loss_windows40) and the stream loss over every held-out character (val_loss). Prints one JSON object.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
BOOK = ROOT / "tfseq" / "data" / "books" / "1268-0.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10, help="wall-clock training budget of each (default 10)")
    parser.add_argument("--config", default="charlm_quick", help="tfseq pipeline (default charlm_quick)")
    parser.add_argument("--book", default=str(BOOK), help="the text (default: the embedded Mysterious Island)")
    parser.add_argument("--skip-reference", action="store_true", help="run only tfseq's side")
    parser.add_argument("--run-dir", help="keep tfseq's run folder here, to sample from it (default: temporary)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a field of tfseq's config, as in python -m tfseq.train (repeatable)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run_dir) if args.run_dir else Path(tmp) / "run"
        # Its progress goes to stderr, so a long run can be followed.
        subprocess.run([sys.executable, "-m", "tfseq.train", "charlm", "--config", args.config, "--data", args.book,
                        "--set", f"train.max_minutes={args.minutes}", "--run-dir", str(run),
                        *[arg for override in args.set for arg in ("--set", override)]],
                       cwd=ROOT, stdout=sys.stderr, check=True)
        metrics = json.loads((run / "metrics.json").read_text())
        with open(run / "history.csv", newline="") as fh:
            history = [{k: round(float(v), 4) for k, v in row.items()} for row in csv.DictReader(fh)]
    reference = []
    if not args.skip_reference:
        done = subprocess.run([sys.executable, "-u", str(SHARED / "bench" / "seed_charlm.py"), args.book,
                               str(args.minutes)], cwd=ROOT, capture_output=True, text=True, check=True)
        reference = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"epoch"')]
    within = [r for r in reference if r["min"] <= args.minutes]
    print(json.dumps({
        "bench": "charlm_budget",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "minutes": args.minutes,
        "config": args.config,
        "overrides": args.set,
        "ref_epochs": reference,
        "ref_val_loss_windows40_at_budget": within[-1]["val_loss"] if within else None,
        "ref_best_val_loss_windows40_within_budget": min((r["val_loss"] for r in within), default=None),
        "ours_train_minutes": round(metrics["train_minutes"], 2),
        "ours_val_loss_windows40": round(metrics["val_loss_windows40"], 4),
        "ours_val_loss_stream": round(metrics["val_loss"], 4),
        "ours_val_bpc_stream": round(metrics["val_bpc"], 4),
        "ours_val_perplexity_stream": round(metrics["val_perplexity"], 3),
        "ours_history": [{k: r[k] for k in ("epoch", "minutes", "loss", "val_loss") if k in r} for r in history],
    }, indent=1))


if __name__ == "__main__":
    main()
