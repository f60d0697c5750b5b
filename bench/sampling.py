"""Sampling speed: tfseq's compiled stateful generator beside the textbook's windowed sampler.

    python bench/sampling.py [--repeats 5] [--chars 2000] [--batch-chars 500]

Same model size on both sides: an untrained Embedding(256) -> LSTM(512) -> Dense(vocab) over the characters of The
Mysterious Island. The reference (`../shared/bench/seed_reference.py sample`) re-runs the model eagerly on the last
40 characters for every new one. Ours: one stream, 64 streams of the same prompt in one batch, and the exported
SavedModel (loaded back with tf.saved_model.load) for 64 streams. Each figure is the median of --repeats timed calls
after a warm-up call. Prints one JSON object (chars/s).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
BOOK = ROOT / "tfseq" / "data" / "books" / "1268-0.txt"


def timed(fn, repeats: int) -> float:
    """Median seconds of `repeats` calls of fn, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure (default 5)")
    parser.add_argument("--chars", type=int, default=2000, help="characters per call, one stream (default 2000)")
    parser.add_argument("--batch-chars", type=int, default=500, help="characters per stream, 64 streams (default 500)")
    args = parser.parse_args()

    done = subprocess.run([sys.executable, str(SHARED / "bench" / "seed_reference.py"), "sample", str(BOOK)],
                          capture_output=True, text=True, check=True)
    reference = json.loads(done.stdout.strip().splitlines()[-1])

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    from tfseq.config import ModelConfig, SampleConfig
    from tfseq.data.text import CharVocab, read_text
    from tfseq.generation.endpoint import add_generate_endpoint, codec_for
    from tfseq.generation.generate import generate
    from tfseq.generation.stepper import Stepper
    from tfseq.models.factory import build_model

    vocab = CharVocab.from_text(read_text(BOOK))
    keras.utils.set_random_seed(1)
    model = build_model(ModelConfig(cell="lstm", units=512, embedding_dim=256), vocab.size)
    generator = Stepper(model)
    options = SampleConfig(temperature=1.0, seed=1)
    one = timed(lambda: generate(generator, vocab, ["The island"], args.chars, options), args.repeats)
    many = timed(lambda: generate(generator, vocab, ["The island"] * 64, args.batch_chars, options), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        archive = keras.export.ExportArchive()
        archive.track(model)
        add_generate_endpoint(archive, generator, codec_for(vocab))
        archive.write_out(tmp, verbose=False)
        loaded = tf.saved_model.load(tmp)
        prompts = tf.constant(["The island"] * 64)
        saved = timed(lambda: loaded.generate(prompts, np.int32(args.batch_chars), np.float32(1.0), np.int32(0),
                                              np.float32(1.0), np.int64(1)), args.repeats)
    ours_one = args.chars / one
    print(json.dumps({
        "bench": "sampling",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "model": f"Embedding(256) -> LSTM(512) -> Dense({vocab.size}), untrained",
        "ours_1_stream": round(ours_one),
        "ours_64_streams": round(64 * args.batch_chars / many),
        "savedmodel_64_streams": round(64 * args.batch_chars / saved),
        "reference_1_stream": round(reference["chars_per_s"], 1),
        "ratio_1_stream": round(ours_one / reference["chars_per_s"], 1),
    }, indent=1))


if __name__ == "__main__":
    main()
