"""Raw-string inference: the in-graph review classifier, SavedModel export, and predictions from runs or exports.

The exported SavedModels need nothing of tfseq: tokenizer, vocabulary and model are in the graph, and they load
with plain `tf.saved_model.load` in any process that has TensorFlow.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfseq.config import SentimentData
from tfseq.data.imdb import vocab_table
from tfseq.data.text import WordVocab, tokenize
from tfseq.errors import UserError
from tfseq.files import write_json

STRINGS = tf.TensorSpec([None], tf.string, name="text")


class ReviewEncoder:
    """Raw reviews -> right-padded ids, in TensorFlow ops: the same tokens, vocabulary, truncation and empty-review
    rule as training (`tfseq.data.imdb`), so an exported model scores a review exactly as the trained one.

    Args:
        vocab: the run's WordVocab.
        data: the run's data config (tokenizer, max_length, truncate).
    """

    def __init__(self, vocab: WordVocab, data: SentimentData):
        self.tokenizer, self.max_length, self.truncate = vocab.tokenizer, data.max_length, data.truncate
        self.oov = vocab.oov_id
        self.table = vocab_table(vocab)

    def __call__(self, texts: tf.Tensor) -> tf.Tensor:
        """tf.string [n] -> int32 [n, time], right-padded with 0; an empty review becomes one OOV id."""
        ids = tf.ragged.map_flat_values(self.table.lookup, tokenize(texts, self.tokenizer))
        if self.max_length:
            ids = ids[:, -self.max_length:] if self.truncate == "last" else ids[:, : self.max_length]
        empty = tf.cast(tf.equal(ids.row_lengths(), 0), tf.int64)
        fill = tf.RaggedTensor.from_row_lengths(tf.fill([tf.reduce_sum(empty)], tf.constant(self.oov, tf.int64)),
                                                empty)
        return tf.cast(tf.concat([ids, fill], axis=1).to_tensor(0), tf.int32)


def classifier_function(model: keras.Model, encoder: ReviewEncoder):
    """The `serve` endpoint: raw reviews (tf.string [n]) -> {"probability": float32 [n]} of a positive review."""

    def serve(text):
        return {"probability": tf.reshape(model(encoder(text), training=False), [-1])}

    return serve


def export_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Writes a run's model as a SavedModel that takes raw strings.

    A sentiment run gives a `serve(text: string[n]) -> {"probability": float32[n]}` signature (also the default
    signature); a char-LM run gives `generate` (see tfseq.generation).

    Args:
        run_dir: the run folder.
        out: the SavedModel folder; default `<run_dir>/savedmodel`.

    Returns:
        The SavedModel folder.
    """
    from tfseq.runs import load_trained

    cfg, vocab, model = load_trained(run_dir)
    out = Path(out) if out else Path(run_dir) / "savedmodel"
    if out.exists() and any(out.iterdir()) and not (out / "saved_model.pb").exists():
        raise UserError(f"--out {out} is a non-empty folder that is not a SavedModel; choose another folder")
    archive = keras.export.ExportArchive()
    archive.track(model)
    if cfg.task == "sentiment":
        encoder = ReviewEncoder(vocab, cfg.data)
        archive.track(encoder.table)
        archive.add_endpoint("serve", classifier_function(model, encoder), input_signature=[STRINGS])
    else:
        from tfseq.generation import CharGenerator, add_generate_endpoint

        add_generate_endpoint(archive, CharGenerator(model), vocab)
    # Written beside the target and renamed into place: a crash never leaves a half-written SavedModel behind.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        archive.write_out(str(staging), verbose=False)
        write_json(staging / "tfseq.json", {"task": cfg.task, "run": str(Path(run_dir).resolve())})
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old)
        else:
            staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def is_savedmodel(path: str | Path) -> bool:
    return (Path(path) / "saved_model.pb").is_file()


def classify(source: str | Path, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """Probability that each review is positive, from a sentiment run folder or its exported SavedModel.

    Args:
        source: a run folder or a SavedModel folder.
        texts: the reviews.
        batch_size: reviews per model call.

    Returns:
        float32 [len(texts)].
    """
    if is_savedmodel(source):
        loaded = tf.saved_model.load(str(source))
        if not hasattr(loaded, "serve"):
            raise UserError(f"{source} is a SavedModel without a 'serve' signature; export a sentiment run")
        serve = loaded.serve
    else:
        from tfseq.runs import load_trained

        cfg, vocab, model = load_trained(source, task="sentiment")
        serve = tf.function(classifier_function(model, ReviewEncoder(vocab, cfg.data)), input_signature=[STRINGS])
    out = [serve(tf.constant(texts[i:i + batch_size]))["probability"].numpy()
           for i in range(0, len(texts), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, np.float32)
