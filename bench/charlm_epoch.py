"""Minutes per epoch of the textbook char-LM recipe: the reference script beside tfseq's charlm_textbook pipeline.

    python bench/charlm_epoch.py [--epochs 3] [--book PATH]

Runs ../shared/bench/seed_charlm.py (the textbook's code) and then `python -m tfseq.train charlm --config
charlm_textbook`, one after the other (never together: two jobs on 2 cores spoil both timings), each for --epochs
epochs of the same recipe (Embedding 256 -> LSTM 512 -> Dense, windows of 40, batch 64, Adam 1e-3, validation on
the last 10%). An epoch's time is the gap between the progress lines two epochs print, taken as they arrive; the
first epoch (start-up, tracing) is left out of the median. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
BOOK = ROOT / "tfseq" / "data" / "books" / "1268-0.txt"


def timed_epochs(cmd: list[str], is_epoch_line, epochs: int) -> tuple[list[float], list[str]]:
    """Runs cmd, stamping each epoch line as it arrives; stops the process after `epochs` epoch lines.

    Returns:
        (seconds between consecutive epoch lines, the epoch lines).
    """
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    stamps, lines = [time.perf_counter()], []
    for line in proc.stdout:
        if is_epoch_line(line):
            stamps.append(time.perf_counter())
            lines.append(line.strip())
            if len(lines) == epochs:
                break
    proc.terminate()
    proc.wait(timeout=60)
    if len(lines) < epochs:
        raise SystemExit(f"{cmd[:4]} ended after {len(lines)} epochs")
    return [b - a for a, b in zip(stamps, stamps[1:])], lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each (>= 2; default 3)")
    parser.add_argument("--book", default=str(BOOK), help="the text (default: the embedded Mysterious Island)")
    args = parser.parse_args()
    reference = SHARED / "bench" / "seed_charlm.py"
    if not reference.exists():
        raise SystemExit(f"reference script {reference} not found")

    ref_gaps, ref_lines = timed_epochs([sys.executable, "-u", str(reference), args.book, "1000"],
                                       lambda line: line.startswith('{"epoch"'), args.epochs)
    ref_val = [json.loads(line)["val_loss"] for line in ref_lines]
    with tempfile.TemporaryDirectory() as tmp:
        ours_gaps, ours_lines = timed_epochs(
            [sys.executable, "-u", "-m", "tfseq.train", "charlm", "--config", "charlm_textbook", "--data", args.book,
             "--epochs", str(args.epochs), "--run-dir", str(Path(tmp) / "run")],
            lambda line: re.match(r"\d+/\d+ - .*val_loss", line) is not None, args.epochs)
    ours_val = [float(re.search(r"val_loss: ([0-9.]+)", line).group(1)) for line in ours_lines]
    ref_median = statistics.median(ref_gaps[1:]) / 60
    ours_median = statistics.median(ours_gaps[1:]) / 60
    print(json.dumps({
        "bench": "charlm_epoch",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "epochs": args.epochs,
        "ref_epoch_minutes": [round(g / 60, 3) for g in ref_gaps],
        "ours_epoch_minutes": [round(g / 60, 3) for g in ours_gaps],
        "ref_median_minutes_per_epoch": round(ref_median, 3),
        "ours_median_minutes_per_epoch": round(ours_median, 3),
        "ratio_ref_over_ours": round(ref_median / ours_median, 3),
        "ref_val_loss": ref_val,
        "ours_val_loss": ours_val,
    }, indent=1))


if __name__ == "__main__":
    main()
