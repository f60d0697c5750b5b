"""Size a model before training it: `python -m tfseq.summary (--config FILE | RUN) [--set section.key=value ...]
[--json]`.

Prints per layer the parameters (by formula, beside Keras' count), the memory of the weights, of Adam's state and
of one training batch's activations, the totals, and whether each LSTM / GRU layer stays on the cuDNN kernel on a
GPU. Reads no training data: sizes the config does not fix (time steps, vocabulary, classes) come from the options
or are assumed, and the output says which.
"""
from __future__ import annotations

import json

from tfseq.cli import Parser, import_tensorflow, run_main
from tfseq.models.memory import ASSUMED_VOCAB, DEFAULT_TIME_STEPS, estimate_memory, format_estimate, plan_summary


def build_parser() -> Parser:
    parser = Parser(prog="python -m tfseq.summary", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("run", nargs="?", metavar="RUN",
                        help="a run folder (models/<run>): its config.toml, vocab.json and class list")
    parser.add_argument("--config", metavar="FILE",
                        help="a pipeline file, or a name in pipelines/; its `task =` line names the task")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                        help="override any config field, e.g. --set model.units=1024 --set train.batch_size=128 "
                        "(repeatable)")
    parser.add_argument("--time-steps", type=int, default=0, metavar="N",
                        help="steps per sequence (default: data.seq_len for language models, data.max_length "
                        f"rounded up to data.pad_multiple for classifiers, else an assumed {DEFAULT_TIME_STEPS})")
    parser.add_argument("--vocab-size", type=int, default=0, metavar="N",
                        help="ids the embedding takes (default: the run's vocabulary; data.max_tokens + 2 when set; "
                        f"else an assumed {ASSUMED_VOCAB['char']} for characters, {ASSUMED_VOCAB['word']:,} for words)")
    parser.add_argument("--num-classes", type=int, default=0, metavar="N",
                        help="classes of a multiclass head, or a tagger's tags (default: the run's class list, "
                        "model.num_classes, else an assumed 2)")
    parser.add_argument("--json", action="store_true", help="print the same numbers as one JSON object")
    return parser


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.run is None) == (args.config is None):
        parser.error("give a run folder (RUN) or --config FILE, one of them")

    def job():
        plan = plan_summary(args.run, args.config, args.overrides, args.vocab_size, args.time_steps, args.num_classes)
        import_tensorflow()
        estimate = estimate_memory(plan)
        print(json.dumps(estimate.to_dict()) if args.json else format_estimate(estimate), flush=True)

    run_main(job)


if __name__ == "__main__":
    main()
