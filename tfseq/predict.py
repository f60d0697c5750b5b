"""Classify reviews: `python -m tfseq.predict RUN_DIR_OR_SAVEDMODEL [TEXT ...] [--json]`.

Reviews come from the arguments, or one per line on stdin when none are given. Prints, per review, the label,
the probability that it is positive, and the start of the review (or one JSON object per line with --json).
"""
from __future__ import annotations

import json
import sys

from tfseq.cli import Parser, import_tensorflow, run_main
from tfseq.errors import UserError


def build_parser() -> Parser:
    parser = Parser(prog="python -m tfseq.predict", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("source", metavar="RUN_DIR_OR_SAVEDMODEL",
                        help="a sentiment run folder, or a SavedModel written by python -m tfseq.export")
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="reviews to classify (default: one per line on stdin)")
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object per review: {"label", "probability", "text"}')
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="probability from which a review is called positive (default: %(default)s)")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)

    def job():
        texts = args.texts or [line.rstrip("\n") for line in sys.stdin]
        if not texts:
            raise UserError("no reviews given: pass them as arguments or one per line on stdin")
        if not 0 < args.threshold < 1:
            raise UserError(f"--threshold {args.threshold} must be between 0 and 1")
        import_tensorflow()
        from tfseq.serving import classify

        for text, p in zip(texts, classify(args.source, texts)):
            label = "positive" if p >= args.threshold else "negative"
            if args.json:
                print(json.dumps({"label": label, "probability": round(float(p), 6), "text": text}, ensure_ascii=False))
            else:
                short = text if len(text) <= 70 else text[:67] + "..."
                print(f"{label}\t{p:.4f}\t{short}")

    run_main(job)


if __name__ == "__main__":
    main()
