"""Raw-string inference: the in-graph review classifier, SavedModel export, and predictions from runs or exports.

The exported SavedModels need nothing of tfseq: tokenizer, vocabulary and model are in the graph, and they load
with plain `tf.saved_model.load` in any process that has TensorFlow.
"""
from __future__ import annotations

import json
import os
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
from tfseq.files import UMASK, fsync_dir, write_json

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

    def ragged(self, texts: tf.Tensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """tf.string [n] -> (int32 ids [n, (time)], each row non-empty: an empty review becomes one OOV id;
        int32 [n] how many of each review's kept tokens are in the vocabulary)."""
        ids = tf.ragged.map_flat_values(self.table.lookup, tokenize(texts, self.tokenizer))
        if self.max_length:
            ids = ids[:, -self.max_length:] if self.truncate == "last" else ids[:, : self.max_length]
        known = tf.reduce_sum(tf.cast(tf.not_equal(ids, self.oov), tf.int32), axis=1)
        empty = tf.cast(tf.equal(ids.row_lengths(), 0), tf.int64)
        fill = tf.RaggedTensor.from_row_lengths(tf.fill([tf.reduce_sum(empty)], tf.constant(self.oov, tf.int64)),
                                                empty)
        return tf.cast(tf.concat([ids, fill], axis=1), tf.int32), known


def classifier_function(model: keras.Model, encoder: ReviewEncoder, reads_padding: bool):
    """The `serve` endpoint: raw reviews (tf.string [n]) -> {"probability": float32 [n] of a positive review,
    "known_tokens": int32 [n] tokens of the review found in the vocabulary}.

    Args:
        model: the classifier.
        encoder: the run's ReviewEncoder.
        reads_padding: the model has no mask (model.mask_zero = false), so padding would change its answer: each
            review is then scored alone, and its probability does not depend on the other reviews of the call.
    """

    def serve(text):
        ids, known = encoder.ragged(text)
        if reads_padding:
            probability = tf.map_fn(lambda row: model(row[None], training=False)[0, 0], ids,
                                    fn_output_signature=tf.float32)
        else:
            padded = ids.to_tensor(0)
            padded = tf.pad(padded, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(padded)[1])]])
            probability = tf.reshape(model(padded, training=False), [-1])
        return {"probability": probability, "known_tokens": known}

    return serve


# What an export writes into its folder: Keras' SavedModel files and tfseq.json.
EXPORT_ENTRIES = frozenset({"saved_model.pb", "fingerprint.pb", "variables", "assets", "tfseq.json"})


def export_run(run_dir: str | Path, out: str | Path | None = None, force: bool = False) -> Path:
    """Writes a run's model as a SavedModel that takes raw strings.

    A sentiment run gives a `serve(text: string[n]) -> {"probability": float32[n], "known_tokens": int32[n]}`
    signature (also the default signature); a char-LM run gives `generate` (see tfseq.generation).

    Args:
        run_dir: the run folder.
        out: the SavedModel folder; default `<run_dir>/savedmodel`. An existing folder is replaced only when it holds
            nothing but an earlier export of this same run, or with `force`.
        force: replace whatever `out` holds.

    Returns:
        The SavedModel folder.
    """
    from tfseq.runs import load_trained

    out = Path(out) if out else Path(run_dir) / "savedmodel"
    check_export_folder(out, Path(run_dir), force)
    cfg, vocab, model = load_trained(run_dir)
    archive = keras.export.ExportArchive()
    archive.track(model)
    if cfg.task == "sentiment":
        encoder = ReviewEncoder(vocab, cfg.data)
        archive.track(encoder.table)
        archive.add_endpoint("serve", classifier_function(model, encoder, reads_padding=not cfg.model.mask_zero),
                             input_signature=[STRINGS])
    else:
        from tfseq.generation import CharGenerator, add_generate_endpoint

        add_generate_endpoint(archive, CharGenerator(model), vocab)
    # Written beside the target and renamed into place: a crash never leaves a half-written SavedModel behind.
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        os.chmod(staging, 0o777 & ~UMASK)  # mkdtemp makes 0700: the SavedModel should be an ordinary folder
    except OSError as err:
        raise UserError(f"cannot write --out {out}: {err.strerror} ({err.filename}); choose a folder path whose "
                        "parent is a writable folder") from None
    try:
        archive.write_out(str(staging), verbose=False)
        write_json(staging / "tfseq.json", {"task": cfg.task, "run": str(Path(run_dir).resolve())})
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            out.rename(old / out.name)
            staging.rename(out)
            fsync_dir(out.parent)
            shutil.rmtree(old)
        else:
            staging.rename(out)
            fsync_dir(out.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def check_export_folder(out: Path, run_dir: Path, force: bool) -> None:
    """Refuses an export folder that is, holds or lies among the run's own files (always), or that holds anything
    but an earlier export of the same run (unless `force`).

    Raises:
        UserError naming what the folder holds, and the way out.
    """
    run_path, target = run_dir.resolve(), out.resolve()
    if target == run_path or target in run_path.parents:
        raise UserError(f"--out {out} holds the run folder {run_dir} itself; give a folder outside it (or the "
                        "default, RUN_DIR/savedmodel)")
    if run_path in target.parents and target != run_path / "savedmodel":
        raise UserError(f"--out {out} is inside the run folder {run_dir}, among the run's own files; give a folder "
                        "outside it (or the default, RUN_DIR/savedmodel)")
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder; give a folder path for the SavedModel")
    entries = sorted(entry.name for entry in out.iterdir())
    if not entries or force:
        return
    exported_from = None
    if set(entries) <= EXPORT_ENTRIES and "tfseq.json" in entries:
        try:
            exported_from = json.loads((out / "tfseq.json").read_text(encoding="utf-8")).get("run")
        except (ValueError, UnicodeDecodeError, AttributeError):
            exported_from = None
    if exported_from == str(run_dir.resolve()):
        return  # an earlier export of this run: replacing it loses nothing
    if exported_from:
        held = f"a SavedModel exported from another run ({exported_from})"
    else:
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
        held = f"{len(entries)} entries that tfseq did not write for this run ({shown})"
    raise UserError(f"--out {out} already holds {held}; choose another folder, or pass --force to replace "
                    "everything in it")


def is_savedmodel(path: str | Path) -> bool:
    return (Path(path) / "saved_model.pb").is_file()


def classify(source: str | Path, texts: list[str], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray | None]:
    """Probability that each review is positive, from a sentiment run folder or its exported SavedModel.

    A review's probability does not depend on the other reviews of the call.

    Args:
        source: a run folder or a SavedModel folder.
        texts: the reviews.
        batch_size: reviews per model call.

    Returns:
        (float32 [len(texts)] probabilities, int32 [len(texts)] tokens of each review found in the vocabulary;
        None for a SavedModel exported before tfseq reported them).
    """
    if is_savedmodel(source):
        loaded = tf.saved_model.load(str(source))
        if not hasattr(loaded, "serve"):
            raise UserError(f"{source} is a SavedModel without a 'serve' signature; export a sentiment run")
        serve = loaded.serve
    else:
        from tfseq.runs import load_trained

        cfg, vocab, model = load_trained(source, task="sentiment")
        serve = tf.function(classifier_function(model, ReviewEncoder(vocab, cfg.data), not cfg.model.mask_zero),
                            input_signature=[STRINGS])
    if texts and "known_tokens" not in serve(tf.constant(texts[:1])):
        # Exported before tfseq scored unmasked models review by review: one review per call keeps the promise.
        return np.array([serve(tf.constant([t]))["probability"].numpy()[0] for t in texts], np.float32), None
    outputs = [serve(tf.constant(texts[i:i + batch_size])) for i in range(0, len(texts), batch_size)]
    if not outputs:
        return np.zeros(0, np.float32), np.zeros(0, np.int32)
    return (np.concatenate([o["probability"].numpy() for o in outputs]),
            np.concatenate([o["known_tokens"].numpy() for o in outputs]))
