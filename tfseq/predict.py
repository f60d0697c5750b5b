"""Classify reviews: `python -m tfseq.predict RUN_DIR_OR_SAVEDMODEL [TEXT ...] [--json]`.

Reviews come from the arguments, or one per line on stdin when none are given (UTF-8, with or without a BOM; LF or
CRLF line ends; blank lines are skipped). Prints, per review, the label, the probability that it is positive, and the
start of the review (or one JSON object per line with --json).
"""
from __future__ import annotations

import json
import sys

from tfseq.cli import Parser, import_tensorflow, read_stdin_lines, run_main
from tfseq.errors import UserError


def build_parser() -> Parser:
    parser = Parser(prog="python -m tfseq.predict", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("source", metavar="RUN_DIR_OR_SAVEDMODEL",
                        help="a sentiment run folder, or a SavedModel written by python -m tfseq.export")
    parser.add_argument("texts", nargs="*", metavar="TEXT",
                        help="reviews to classify (default: one per line on stdin; blank lines are skipped)")
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object per review: {"label", "probability", "known_tokens", "text"}; '
                        "known_tokens = 0 means no word of the review is in the vocabulary, so the answer says "
                        "nothing about it")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="probability from which a review is called positive (default: %(default)s)")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_intermixed_args(argv)  # reviews may come before or after the options

    def job():
        if not 0 < args.threshold < 1:
            raise UserError(f"--threshold {args.threshold} must be between 0 and 1")
        texts = args.texts or [line for line in read_stdin_lines("stdin") if line.strip()]
        if not texts:
            raise UserError("no reviews given: pass them as arguments or one per line on stdin")
        import_tensorflow()
        from tfseq.serving import classify

        probs, known = classify(args.source, texts)
        unknown = 0
        for i, (text, p) in enumerate(zip(texts, probs)):
            label = "positive" if p >= args.threshold else "negative"
            n_known = None if known is None else int(known[i])
            unknown += n_known == 0
            if args.json:
                row = {"label": label, "probability": round(float(p), 6), "known_tokens": n_known, "text": text}
                print(json.dumps(row, ensure_ascii=False))
            else:
                short = text if len(text) <= 70 else text[:67] + "..."
                flag = "\t(no known word)" if n_known == 0 else ""
                print(f"{label}\t{p:.4f}\t{short}{flag}")
        if unknown and not args.json:
            print(f"note: {unknown} review(s) have no word in the model's vocabulary: their label is the model's "
                  "answer for an unknown text, not a judgement of the review", file=sys.stderr)

    run_main(job)


if __name__ == "__main__":
    main()
