"""Average classifier runs into one: `python -m tfseq.ensemble OUT_DIR RUN RUN [RUN ...]`.

The runs must be finished classifier runs of one task and data (same vocabulary and classes), e.g. one recipe
trained with different --seed values. OUT_DIR becomes a run folder whose model averages the runs' class
probabilities: it is scored on the runs' validation and test splits (metrics.json, confusion.json; train_minutes is
the runs' sum), and python -m tfseq.predict and python -m tfseq.export take it like any run. It holds no weights of its
own: it reads the runs' folders, and refuses a run retrained or removed since.
"""
from __future__ import annotations

from tfseq.cli import Parser, import_tensorflow, run_main


def build_parser() -> Parser:
    parser = Parser(prog="python -m tfseq.ensemble", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("out", metavar="OUT_DIR", help="the ensemble's run folder to create (absent or empty), e.g. "
                        "models/imdb_best_nb-ensemble")
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="two or more finished classifier run folders of the same task, data, vocabulary and "
                        "classes")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)

    def job():
        import_tensorflow()
        from tfseq.ensembling import make_ensemble

        print(f"ensemble written to {make_ensemble(args.out, args.runs)}", flush=True)

    run_main(job)


if __name__ == "__main__":
    main()
