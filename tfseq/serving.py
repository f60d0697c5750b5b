"""Raw-string inference: the in-graph text classifier, SavedModel export, and predictions from runs or exports.

The exported SavedModels need nothing of tfseq: tokenizer, vocabulary and model are in the graph, and they load
with plain `tf.saved_model.load` in any process that has TensorFlow.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfseq.data.encoder import TextEncoder
from tfseq.data.imdb import POLARITY
from tfseq.errors import UserError
from tfseq.files import UMASK, fsync_dir, write_json

STRINGS = tf.TensorSpec([None], tf.string, name="text")


def classifier_function(model: keras.Model, encoder: TextEncoder, head, classes: list[str], reads_padding: bool):
    """The `serve` endpoint: raw texts (tf.string [n]) -> the head's serving outputs ("label", "probabilities", and
    "probability" for a binary head) and "known_tokens": int32 [n] tokens of the text found in the vocabulary.

    Args:
        model: the classifier.
        encoder: the run's TextEncoder (the same encoding as training).
        head: the model's head (tfseq.models.heads).
        classes: the class names, in the order of the model's outputs.
        reads_padding: the model has no mask (model.mask_zero = false), so padding would change its answer: each
            text is then scored alone, and its answer does not depend on the other texts of the call.
    """

    def serve(text):
        ids, known = encoder.encode(text)
        if reads_padding:
            outputs = tf.map_fn(lambda row: model(row[None], training=False)[0], ids,
                                fn_output_signature=tf.TensorSpec(model.output_shape[1:], tf.float32))
        else:
            padded = ids.to_tensor(0)
            padded = tf.pad(padded, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(padded)[1])]])
            outputs = model(padded, training=False)
        return {**head.serving_outputs(outputs, classes), "known_tokens": known}

    return serve


def _serve_function(trained):
    """The `serve` endpoint of a loaded classifier run, and its encoder (an export tracks the encoder's table)."""
    from tfseq.models.heads import get_head

    cfg = trained.cfg
    encoder = TextEncoder(trained.vocab, cfg.data.max_length, cfg.data.truncate)
    serve = classifier_function(trained.model, encoder, get_head(cfg.model.head), trained.classes,
                                reads_padding=not cfg.model.mask_zero)
    return serve, encoder


def add_classifier_endpoints(archive, trained) -> None:
    """Adds `serve(text: string[n])` (see classifier_function) and `classes() -> string[k]` to an ExportArchive.

    Args:
        archive: a keras.export.ExportArchive tracking the model.
        trained: the loaded run (tfseq.runs.Trained).
    """
    serve, encoder = _serve_function(trained)
    add_text_endpoints(archive, serve, encoder.table, "classes", trained.classes)


def add_text_endpoints(archive, serve, table, names_endpoint: str, names: list[str]) -> None:
    """Adds `serve(text: string[n])` and a `names_endpoint() -> string[k]` that lists the model's output names.

    Args:
        archive: a keras.export.ExportArchive tracking the model.
        serve: the endpoint's function of raw texts.
        table: the vocabulary lookup table it uses (tracked, so the export carries it).
        names_endpoint: the listing endpoint's name ("classes", "tags").
        names: the names, in the order of the model's outputs.
    """
    archive.track(table)
    archive.add_endpoint("serve", serve, input_signature=[STRINGS])
    names = list(names)
    archive.add_endpoint(names_endpoint, lambda: tf.constant(names), input_signature=[])


# What an export writes into its folder: Keras' SavedModel files and tfseq.json.
EXPORT_ENTRIES = frozenset({"saved_model.pb", "fingerprint.pb", "variables", "assets", "tfseq.json"})


def export_run(run_dir: str | Path, out: str | Path | None = None, force: bool = False) -> Path:
    """Writes a run's model as a SavedModel that takes raw strings, with the signatures its task adds.

    A classifier gives `serve(text: string[n]) -> {"label": string[n], "probabilities": float32[n, k],
    "known_tokens": int32[n]}` (binary models also "probability": float32[n]) and `classes()`; a language model
    gives `generate` and `generate_until` (see tfseq.generation.endpoint).

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
    from tfseq.config import task_spec

    trained = load_trained(run_dir)
    archive = keras.export.ExportArchive()
    archive.track(trained.model)
    task_spec(trained.cfg.task).task.add_endpoints(archive, trained)
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
        write_json(staging / "tfseq.json", {"task": trained.cfg.task, "head": trained.cfg.model.head,
                                            "run": str(Path(run_dir).resolve())})
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


@dataclass
class Predictions:
    """A classifier's answers for a list of texts.

    Args:
        probabilities: float32 [n, k]: every class's probability per text.
        classes: the k class names.
        known: int32 [n] tokens of each text found in the vocabulary; None from a SavedModel exported before tfseq
            reported them.
        binary: the model has a binary head (its answer is the probability of the second class).
    """

    probabilities: np.ndarray
    classes: list[str]
    known: np.ndarray | None
    binary: bool


def classify(source: str | Path, texts: list[str], batch_size: int = 256) -> Predictions:
    """Every class's probability for each text, from a classifier run folder or its exported SavedModel.

    A text's answer does not depend on the other texts of the call.

    Args:
        source: a run folder or a SavedModel folder.
        texts: the texts.
        batch_size: texts per model call.
    """
    if is_savedmodel(source):
        loaded = tf.saved_model.load(str(source))
        if not hasattr(loaded, "serve"):
            raise UserError(f"{source} is a SavedModel without a 'serve' signature; export a classifier run")
        serve = loaded.serve
        # Sentiment SavedModels exported before class lists were stored have negative / positive outputs only.
        classes = ([c.decode("utf-8") for c in loaded.classes().numpy()] if hasattr(loaded, "classes") else POLARITY)
    else:
        from tfseq.runs import load_trained

        trained = load_trained(source, tool="predict")
        classes = trained.classes
        serve = tf.function(_serve_function(trained)[0], input_signature=[STRINGS])
    first = serve(tf.constant(texts[:1], tf.string))
    binary = "probability" in first
    if "known_tokens" not in first:
        # Exported before tfseq scored unmasked models text by text: one text per call keeps the promise.
        outputs = [serve(tf.constant([t])) for t in texts]
    else:
        outputs = [serve(tf.constant(texts[i:i + batch_size])) for i in range(0, len(texts), batch_size)] or [first]
    if "probabilities" in first:
        probabilities = np.concatenate([o["probabilities"].numpy() for o in outputs])
    else:
        positive = np.concatenate([o["probability"].numpy() for o in outputs])
        probabilities = np.stack([1 - positive, positive], axis=1)
    known = np.concatenate([o["known_tokens"].numpy() for o in outputs]) if "known_tokens" in first else None
    return Predictions(probabilities.astype(np.float32), classes, known, binary)
