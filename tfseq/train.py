"""Train a model: `python -m tfseq.train {charlm,sentiment} [--config FILE] [options] [--set section.key=value ...]`.

Run the same command again after an interruption to resume the run from its last finished epoch.
"""
from __future__ import annotations

from tfseq.cli import Parser, import_tensorflow, run_main
from tfseq.config import DEFAULT_PIPELINES, TASKS, load_config


def build_parser() -> Parser:
    parser = Parser(prog="python -m tfseq.train", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("task", choices=TASKS,
                        help="charlm: a character-level language model of a text; sentiment: an IMDb classifier")
    parser.add_argument("--config", metavar="FILE",
                        help="pipeline file, or a name in pipelines/ (default: "
                        + ", ".join(f"{v} for {k}" for k, v in DEFAULT_PIPELINES.items()) + ")")
    parser.add_argument("--data", metavar="PATH",
                        help="charlm: a UTF-8 text file (default: the embedded book, The Mysterious Island); "
                        "sentiment: aclImdb_v1.tar.gz, an aclImdb/ folder, a CSV, or 'tfds' (sets data.path)")
    parser.add_argument("--run-dir", metavar="DIR",
                        help="folder for this run (default: a new models/<pipeline>-<time>, or the interrupted "
                        "run of the same config, which is resumed)")
    parser.add_argument("--epochs", type=int, metavar="N", help="passes over the training data (train.epochs)")
    parser.add_argument("--batch-size", type=int, metavar="N", help="sequences per batch (train.batch_size)")
    parser.add_argument("--seed", type=int, metavar="N", help="seed of weights, dropout and shuffling (train.seed)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                        help="override any config field, e.g. --set model.cell=gru --set train.learning_rate=2e-3 "
                        "(repeatable; see the [data], [model] and [train] fields in tfseq/config.py)")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    named = {"data.path": args.data, "train.epochs": args.epochs, "train.batch_size": args.batch_size,
             "train.seed": args.seed}
    overrides = [f"{k}={v}" for k, v in named.items() if v is not None] + args.overrides

    def job():
        cfg = load_config(args.task, args.config, overrides)
        import_tensorflow()
        from tfseq.trainer import train

        train(cfg, args.run_dir)

    run_main(job, on_interrupt="interrupted; run the same command again to resume from the last finished epoch")


if __name__ == "__main__":
    main()
