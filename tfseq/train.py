"""Train a model: `python -m tfseq.train TASK [--config FILE] [--data PATH] [options] [--set section.key=value ...]`.

Run the same command again after an interruption to resume the run from its last finished epoch.
"""
from __future__ import annotations

from tfseq.cli import Parser, import_tensorflow, run_main
from tfseq.config import load_config
from tfseq.tasks.registry import TASKS


def build_parser() -> Parser:
    parser = Parser(prog="python -m tfseq.train", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("task", choices=list(TASKS), metavar="TASK",
                        help="; ".join(f"{name}: {spec.summary}" for name, spec in TASKS.items()))
    parser.add_argument("--config", metavar="FILE",
                        help="pipeline file, or a name in pipelines/ (default: "
                        + ", ".join(f"{spec.default_pipeline} for {name}" for name, spec in TASKS.items()) + ")")
    parser.add_argument("--data", metavar="PATH",
                        help="sets data.path; " + "; ".join(f"{name}: {spec.data_help}" for name, spec in TASKS.items()))
    parser.add_argument("--run-dir", metavar="DIR",
                        help="folder for this run (default: a new models/<pipeline>-<time>, or the interrupted "
                        "run of the same config, which is resumed)")
    parser.add_argument("--epochs", type=int, metavar="N", help="passes over the training data (train.epochs)")
    parser.add_argument("--batch-size", type=int, metavar="N", help="sequences per batch (train.batch_size)")
    parser.add_argument("--seed", type=int, metavar="N", help="seed of weights, dropout and shuffling (train.seed)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                        help="override any config field, e.g. --set model.cell=gru --set train.learning_rate=2e-3 "
                        "(repeatable; the [data] fields are in the task's module, tfseq/tasks/TASK.py, and for "
                        "classify and sentiment also in TextEncoding in tfseq/config.py, e.g. data.fold_val for the "
                        "final fit; the [model] and [train] fields in tfseq/config.py)")
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
