"""Classify or tag texts: `python -m tfseq.predict RUN_DIR_OR_SAVEDMODEL [TEXT ...] [--json]`.

Texts come from the arguments, or one per line on stdin when none are given (UTF-8, with or without a BOM; LF or
CRLF line ends; blank lines are skipped). For a classifier, prints per text the most probable class and its
probability (a binary model: the label at --threshold and the probability of its second class, "positive" for
sentiment runs), and the start of the text; --json prints one JSON object per line with every class's probability
by name. For a tagger, prints per text its whitespace-separated tokens as token/TAG pairs; --json prints
{"tokens", "tags", "text"}.
"""
from __future__ import annotations

import json
import sys

from tfseq.cli import Parser, import_tensorflow, read_stdin_lines, run_main
from tfseq.errors import UserError


def build_parser() -> Parser:
    parser = Parser(prog="python -m tfseq.predict", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("source", metavar="RUN_DIR_OR_SAVEDMODEL",
                        help="a classify, sentiment or tag run folder, or a SavedModel written by python -m "
                        "tfseq.export")
    parser.add_argument("texts", nargs="*", metavar="TEXT",
                        help="texts to classify or tag (default: one per line on stdin; blank lines are skipped)")
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object per text: for a classifier {"label", "probability", '
                        '"probabilities": {class: probability}, "known_tokens", "text"} (known_tokens = 0 means no '
                        'word of the text is in the vocabulary, so the answer says nothing about it); for a tagger '
                        '{"tokens", "tags", "text"}')
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="binary models: the probability of the second class (positive, for sentiment) from which "
                        "a text gets that class (default: %(default)s); other models answer with the most probable "
                        "class")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_intermixed_args(argv)  # reviews may come before or after the options

    def job():
        if not 0 < args.threshold < 1:
            raise UserError(f"--threshold {args.threshold} must be between 0 and 1")
        texts = args.texts or [line for line in read_stdin_lines("stdin") if line.strip()]
        if not texts:
            raise UserError("no texts given: pass them as arguments or one per line on stdin")
        import_tensorflow()
        from tfseq.serving import classify
        from tfseq.tagging import is_tagger, tag_texts

        if is_tagger(args.source):
            found = tag_texts(args.source, texts)
            for text, tokens, tags in zip(texts, found.tokens, found.tags):
                if args.json:
                    print(json.dumps({"tokens": tokens, "tags": tags, "text": text}, ensure_ascii=False))
                else:
                    print(" ".join(f"{token}/{tag}" for token, tag in zip(tokens, tags)))
            return
        found = classify(args.source, texts)
        unknown = 0
        for i, text in enumerate(texts):
            probs = found.probabilities[i]
            if found.binary:
                best, shown = int(probs[1] >= args.threshold), float(probs[1])
            else:
                best = int(probs.argmax())
                shown = float(probs[best])
            n_known = None if found.known is None else int(found.known[i])
            unknown += n_known == 0
            if args.json:
                row = {"label": found.classes[best], "probability": round(shown, 6),
                       "probabilities": {name: round(float(p), 6) for name, p in zip(found.classes, probs)},
                       "known_tokens": n_known, "text": text}
                print(json.dumps(row, ensure_ascii=False))
            else:
                short = text if len(text) <= 70 else text[:67] + "..."
                flag = "\t(no known word)" if n_known == 0 else ""
                print(f"{found.classes[best]}\t{shown:.4f}\t{short}{flag}")
        if unknown and not args.json:
            print(f"note: {unknown} text(s) have no word in the model's vocabulary: their label is the model's "
                  "answer for an unknown text, not a judgement of the text", file=sys.stderr)

    run_main(job)


if __name__ == "__main__":
    main()
