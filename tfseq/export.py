"""Export a run as a SavedModel that takes raw strings: `python -m tfseq.export RUN_DIR [--out DIR]`.

A classifier run (classify, sentiment) gives `serve(text: string[n]) -> {"label": string[n], "probabilities":
float32[n, k], "known_tokens": int32[n]}` (binary models also "probability") and `classes()`; a language-model run (characters
or words) gives `generate(prompts, length, temperature, top_k, top_p, seed) -> {"text", "generated", "unknown"}` and
`generate_until(..., stops: string[m])`, which ends each sample before the first stop sequence; a tagger run gives
`serve(text: string[n]) -> {"tokens": string[n, t], "tags": string[n, t], "lengths": int32[n]}` (whitespace tokens,
padded with "" to the longest text) and `tags()`. All load with
plain `tf.saved_model.load` in a process without tfseq. An --out folder holding anything but an earlier export of the
same run is refused unless --force is given.
"""
from __future__ import annotations

from tfseq.cli import Parser, import_tensorflow, run_main


def build_parser() -> Parser:
    parser = Parser(prog="python -m tfseq.export", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (models/<run>)")
    parser.add_argument("--out", metavar="DIR", help="SavedModel folder to write (default: RUN_DIR/savedmodel); a "
                        "folder that holds anything but an earlier export of this run is refused")
    parser.add_argument("--force", action="store_true",
                        help="replace what --out holds (another run's export, other files): all of it is deleted")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)

    def job():
        import_tensorflow()
        from tfseq.serving import export_run

        print(f"SavedModel written to {export_run(args.run_dir, args.out, args.force)}", flush=True)

    run_main(job)


if __name__ == "__main__":
    main()
