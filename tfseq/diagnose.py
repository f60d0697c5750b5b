"""Diagnose a model: `python -m tfseq.diagnose gradients (RUN | --config FILE) [--compare] [--out DIR] [options]`.

gradients: for one batch of the training data, the norm of the gradient of the last step's loss with respect to
the input at each earlier step (how far back a recurrent model can learn from), for a run's model trained and at
initialisation, or a config's at initialisation; --compare adds SimpleRNN, LSTM and GRU of the same size, at
initialisation and after a short training. Writes gradient_flow.png and gradient_flow.json and prints a table.
"""
from __future__ import annotations

from tfseq.cli import Parser, import_tensorflow, run_main


def build_parser() -> Parser:
    parser = Parser(prog="python -m tfseq.diagnose", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    grads = commands.add_parser(
        "gradients", help="gradient flow over time steps (vanishing / exploding gradients)",
        description=__doc__.split("\n\n")[1])
    grads.add_argument("run_dir", nargs="?", metavar="RUN",
                       help="a run folder (models/<run>): its model with the trained weights and with the initial "
                       "weights its seed gives, on a batch of its training data")
    grads.add_argument("--config", metavar="FILE",
                       help="instead of RUN: a pipeline file or a name in pipelines/ (its task = line names the "
                       "task): its model at initialisation, on a batch of its data")
    grads.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                       help="override a config field, e.g. --set data.path=book.txt (a run's data moved) or --set "
                       "model.cell=simplernn (with --config; a run's model is fixed by its weights); repeatable")
    grads.add_argument("--compare", action="store_true",
                       help="also measure SimpleRNN, LSTM and GRU models of the same size (units, layers, "
                       "embedding; the rest of the config as it is), each at initialisation and after --steps "
                       "training batches")
    grads.add_argument("--steps", type=int, default=50, metavar="N",
                       help="--compare: training batches of each compared model, with the config's optimizer and "
                       "schedule (default: %(default)s)")
    grads.add_argument("--out", metavar="DIR",
                       help="folder for gradient_flow.png and gradient_flow.json (default: RUN/diagnostics, or "
                       "models/diagnostics-<pipeline> with --config)")
    return parser


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.run_dir is None) == (args.config is None):
        parser.error("gradients takes a run folder or --config FILE (one of them)")

    def job():
        import_tensorflow()
        from tfseq.models.gradient_flow import diagnose_gradients

        report = diagnose_gradients(args.run_dir, args.config, args.overrides, args.compare, args.out, args.steps)
        print(report.table())
        for note in report.notes:
            print(f"note: {note}")
        print(f"wrote {report.plot} and {report.data}", flush=True)

    run_main(job)


if __name__ == "__main__":
    main()
