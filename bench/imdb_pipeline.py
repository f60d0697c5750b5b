"""IMDb pipeline speed: tfseq beside the textbook's tokenizer + TokenTextEncoder + py_function pipeline.

    python bench/imdb_pipeline.py [--archive PATH] [--repeats 3]

Both sides read the same 50,000 labelled reviews from the same CSV (made from the archive by the reference
tooling `../shared/bench/make_imdb_csv.py`), build a vocabulary over them, and make one encoded, padded pass
(padded_batch 32). The reference is `../shared/bench/seed_reference.py pipeline`; ours tokenizes each review once in
TensorFlow on all cores, builds the vocabulary from per-chunk unique tokens and encodes from the same pass. Each side
runs --repeats times in its own fresh process, one after the other; medians are reported. `tokens_identical` checks
every review's tokens against `tfds.deprecated.text.Tokenizer()`. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
OUT = ROOT / "bench" / "out"
# Like the reference, padded batches are consumed by a Python loop; a Keras fit consumes them inside its graph,
# which is cheaper (ours_graph_encode_reviews_per_s).


def ours(csv_path: str, check_tokens: bool) -> dict:
    """Our vocabulary build and one encoded, padded pass over the CSV's reviews (run in a fresh process)."""
    import numpy as np
    import pandas as pd

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    from tfseq.data.encoder import TextEncoder, build_vocab, tokenized_chunks

    def csv_order_batches(encoded):
        # Batches of 32 in CSV order, right-padded, as the reference makes them.
        rows = tf.RaggedTensor.from_row_splits(encoded.ids, encoded.splits)
        return tf.data.Dataset.from_tensor_slices(rows).ragged_batch(32).map(lambda x: x.to_tensor())

    texts = pd.read_csv(csv_path, encoding="utf-8")["review"].astype(str).tolist()
    labels = np.zeros(len(texts), np.int32)
    # Like the reference, which makes its tf.data source from the texts before starting its clock.
    reviews = tf.constant(texts)
    t0 = time.perf_counter()
    chunks = tokenized_chunks(reviews, "book")
    vocab = build_vocab(chunks, "book")
    t_vocab = time.perf_counter() - t0
    t0 = time.perf_counter()
    encoder = TextEncoder(vocab)
    encoded = encoder.encode_chunks(chunks, labels)
    n = sum(int(x.shape[0]) for x in csv_order_batches(encoded))
    t_encode = time.perf_counter() - t0
    t0 = time.perf_counter()
    graph_n = int(csv_order_batches(encoder.encode_chunks(chunks, labels))
                  .reduce(0, lambda count, batch: count + tf.shape(batch)[0]))
    t_graph = time.perf_counter() - t0
    result = {"reviews": n, "vocab_size": vocab.size, "vocab_reviews_per_s": n / t_vocab,
              "encode_reviews_per_s": n / t_encode, "seconds": t_vocab + t_encode,
              "graph_encode_reviews_per_s": graph_n / t_graph,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if check_tokens:
        import tensorflow_datasets as tfds

        reference = tfds.deprecated.text.Tokenizer()
        ours_tokens = (unique[row] for unique, index, _, lengths in ((u.numpy(), i.numpy(), c, n.numpy())
                                                                      for u, i, c, n in chunks)
                       for row in np.split(index, np.cumsum(lengths)[:-1]))
        mismatches = [k for k, (text, row) in enumerate(zip(texts, ours_tokens))
                      if [t.decode("utf-8") for t in row] != reference.tokenize(text)]
        result.update(tokens_identical=not mismatches, token_mismatches=len(mismatches),
                      token_reviews_checked=len(texts))
    return result


def run_json(cmd: list[str]) -> dict:
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", default=str(SHARED / "data" / "imdb" / "aclImdb_v1.tar.gz"),
                        help="aclImdb_v1.tar.gz (default: ../shared/data/imdb/)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side (default 3)")
    parser.add_argument("--ours", metavar="CSV", help=argparse.SUPPRESS)  # internal: one run of our side
    parser.add_argument("--check-tokens", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ours:
        print(json.dumps(ours(args.ours, args.check_tokens)))
        return

    OUT.mkdir(parents=True, exist_ok=True)
    csv_path = OUT / "movie_data.csv"
    if not csv_path.exists():
        subprocess.run([sys.executable, str(SHARED / "bench" / "make_imdb_csv.py"), args.archive, str(csv_path)],
                       check=True, capture_output=True)
    reference = [run_json([sys.executable, str(SHARED / "bench" / "seed_reference.py"), "pipeline", str(csv_path)])
                 for _ in range(args.repeats)]
    mine = [run_json([sys.executable, __file__, "--ours", str(csv_path)] + (["--check-tokens"] if i == 0 else []))
            for i in range(args.repeats)]
    med = lambda runs, key: statistics.median(r[key] for r in runs)
    ref_seconds = statistics.median(r["reviews"] / r["vocab_reviews_per_s"] + r["reviews"] / r["encode_reviews_per_s"]
                                    for r in reference)
    print(json.dumps({
        "bench": "imdb_pipeline",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "repeats": args.repeats,
        "reviews": mine[0]["reviews"],
        "ours_vocab_reviews_per_s": round(med(mine, "vocab_reviews_per_s")),
        "ours_encode_reviews_per_s": round(med(mine, "encode_reviews_per_s")),
        "ours_graph_encode_reviews_per_s": round(med(mine, "graph_encode_reviews_per_s")),
        "ref_vocab_reviews_per_s": round(med(reference, "vocab_reviews_per_s")),
        "ref_encode_reviews_per_s": round(med(reference, "encode_reviews_per_s")),
        "ours_seconds_median": round(med(mine, "seconds"), 2),
        "ref_seconds_median": round(ref_seconds, 2),
        "ratio_end_to_end": round(ref_seconds / med(mine, "seconds"), 1),
        "vocab_size_ours": mine[0]["vocab_size"],
        "vocab_size_ref": reference[0]["vocab_size"],
        "tokens_identical": mine[0]["tokens_identical"],
        "token_mismatches": mine[0]["token_mismatches"],
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in mine[1:] or mine)),
    }, indent=1))


if __name__ == "__main__":
    main()
