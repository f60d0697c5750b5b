"""Derive a tagging data set from raw text: `python -m tfseq.data.make_tagging {punctuate,truecase} SOURCE OUT`.

punctuate: lowercased words without punctuation, each tagged with the mark that followed it (O, COMMA, PERIOD,
QUESTION, EXCLAMATION, COLON, SEMICOLON, DASH). truecase: lowercased sentences, each word and mark tagged with its
original case (lower, Title, UPPER, mixed). The rules are in tfseq/data/derive_tags.py.
"""
from __future__ import annotations

import os
from pathlib import Path

from tfseq.cli import Parser, import_tensorflow, run_main
from tfseq.data.derive_tags import IMDB_SPLITS, KINDS, derive_source, is_imdb
from tfseq.data.tagged import write_tagged
from tfseq.errors import UserError


def build_parser() -> Parser:
    parser = Parser(prog="python -m tfseq.data.make_tagging", description=__doc__.split("\n\n")[0].split(": ", 1)[0])
    parser.add_argument("kind", choices=KINDS, help="punctuate: punctuation restoration | truecase: truecasing")
    parser.add_argument("source", metavar="SOURCE",
                        help="a UTF-8 text file (a Project Gutenberg header and licence are stripped), 'book' for "
                        "the embedded The Mysterious Island, a folder of .txt files (each a document), or the IMDb "
                        "archive aclImdb_v1.tar.gz or an extracted aclImdb/ folder (each review a document)")
    parser.add_argument("out", metavar="OUT",
                        help="the file to write: .jsonl for JSON lines ({\"tokens\": [...], \"tags\": [...]} per "
                        "line), any other name (.conll, .txt) for CoNLL (token<TAB>tag lines, a blank line between "
                        "sentences)")
    parser.add_argument("--split", choices=IMDB_SPLITS, default=None,
                        help="IMDb only: its 25,000 labelled training reviews or its 25,000 test reviews "
                        "(default: train)")
    parser.add_argument("--words-per-piece", type=int, default=None, metavar="N",
                        help="punctuate only: cut paragraphs longer than N words into pieces of N/2 to N words "
                        "(default: 40)")
    parser.add_argument("--limit", type=int, default=0, metavar="N",
                        help="keep the first N documents of a folder or of IMDb (quick runs); 0 = all "
                        "(default: %(default)s)")
    return parser


def _check_writable(out: Path) -> None:
    # Before the derivation, which takes seconds on IMDb: a bad OUT should not cost them.
    if out.is_dir():
        raise UserError(f"{out} is a folder; give the file to write, such as {out / 'tags.conll'}")
    folder = out.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"cannot write {out}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK):
        raise UserError(f"cannot write {out}: {folder} is not writable; choose a folder you can write to")


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)

    def job():
        if args.words_per_piece is not None and args.kind != "punctuate":
            raise UserError("--words-per-piece applies to punctuate only; truecase keeps whole sentences")
        if args.limit < 0:
            raise UserError(f"--limit {args.limit} must be 0 (all documents) or more")
        out = Path(args.out)
        _check_writable(out)
        imdb = is_imdb(args.source)
        if args.split and not imdb:
            raise UserError(f"--split chooses IMDb's training or test reviews; {args.source} is not the IMDb archive "
                            "or an aclImdb/ folder: leave --split out")
        if args.source == "book" or os.path.isfile(args.source) and not imdb:
            import_tensorflow()  # text files are stripped by tfseq.data.gutenberg, which imports it: filter its chatter
        options = {} if args.words_per_piece is None else {"words_per_piece": args.words_per_piece}
        tagged = derive_source(args.kind, args.source, args.split or "", args.limit, **options)
        write_tagged(out, tagged)
        counts = ", ".join(f"{tag} {n:,}" for tag, n in tagged.tag_counts().items())
        print(f"wrote {out}: {len(tagged):,} sentences, {tagged.token_count():,} tokens; tags: {counts}", flush=True)

    run_main(job)


if __name__ == "__main__":
    main()
