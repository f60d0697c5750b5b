"""Sample text from a language model: `python -m tfseq.sample RUN_OR_SAVEDMODEL --prompt TEXT [--length N] ...`.

Char and word models alike (a run folder or its export). The RNN state is carried from token to token inside one
compiled loop; the same seed gives the same text. A word model reads prompt words outside its vocabulary as <unk>
and says which on stderr.
"""
from __future__ import annotations

import sys

from tfseq.cli import Parser, import_tensorflow, run_main
from tfseq.config import SampleConfig
from tfseq.errors import UserError


def build_parser() -> Parser:
    parser = Parser(prog="python -m tfseq.sample", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("run_dir", metavar="RUN_OR_SAVEDMODEL",
                        help="a language-model run folder (models/<run>) or its export (python -m tfseq.export)")
    parser.add_argument("--prompt", action="append", default=None,
                        help="text to start from (a char model needs every character in its vocabulary; a word "
                        "model reads unknown words as <unk>); repeat it to continue several prompts in one batch "
                        "(default: 'The island')")
    parser.add_argument("--length", type=int, default=500,
                        help="tokens to generate: characters for a char model, words and punctuation marks for a "
                        "word model (default: %(default)s)")
    heat = parser.add_mutually_exclusive_group()
    heat.add_argument("--temperature", type=float, default=None,
                      help="divides the logits: below 1 is safer, above 1 wilder; 0 = greedy (default: 1.0)")
    heat.add_argument("--scale-factor", type=float, default=None,
                      help="the textbook's name: multiplies the logits, so it is 1 / temperature (must be > 0)")
    parser.add_argument("--top-k", type=int, default=0,
                        help="draw only among the k most likely tokens; 0 = all (default: %(default)s)")
    parser.add_argument("--top-p", type=float, default=1.0,
                        help="draw only among the most likely tokens whose probabilities add up to p; "
                        "1 = all (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same text "
                        "(default: %(default)s)")
    parser.add_argument("--num-samples", type=int, default=1,
                        help="independent samples of each prompt (1-100,000), generated "
                        "together in one batch (default: %(default)s)")
    parser.add_argument("--stop", action="append", default=[], metavar="TEXT",
                        help="end a sample just before this text (repeatable; \\n and \\t are read as newline and "
                        "tab, e.g. --stop '\\n\\n' for the end of a paragraph); --length stays the maximum")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)

    def job():
        if args.scale_factor is not None and not args.scale_factor > 0:
            raise UserError(f"--scale-factor {args.scale_factor} must be > 0 (it is 1 / temperature)")
        temperature = (1 / args.scale_factor if args.scale_factor else
                       1.0 if args.temperature is None else args.temperature)
        options = SampleConfig(temperature, args.top_k, args.top_p, args.seed)
        options.check()
        if not 1 <= args.num_samples <= 100_000:
            raise UserError(f"--num-samples {args.num_samples} must be between 1 and 100,000")
        import_tensorflow()
        from tfseq.generation.generate import sample_run

        stops = [s.replace("\\n", "\n").replace("\\t", "\t") for s in args.stop]
        prompts = [p for p in args.prompt or ["The island"] for _ in range(args.num_samples)]
        samples = sample_run(args.run_dir, prompts, args.length, options, stops)
        if samples.unknown:
            shown = ", ".join(samples.unknown[:20]) + (" ..." if len(samples.unknown) > 20 else "")
            print(f"note: {len(samples.unknown)} prompt word(s) not in the model's vocabulary, read as <unk>: {shown}",
                  file=sys.stderr, flush=True)
        print("\n\n".join(samples.texts), flush=True)

    run_main(job)


if __name__ == "__main__":
    main()
