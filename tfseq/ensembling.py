"""Ensembles of classifier runs: one run folder whose model averages the class probabilities of finished runs of one
recipe (different seeds, say), evaluated, predicted, served and exported like any run.

The ensemble folder holds the members' shared config, vocabulary and class names, `members.json` (each member's
folder, relative to the ensemble's, and the SHA-256 of its weights) and the ensemble's held-out metrics; the weights
stay in the members' folders, so a member retrained or deleted since is refused by name rather than read.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from tfseq.errors import UserError
from tfseq.files import read_json, write_json


def make_ensemble(out: str | Path, members: list[str | Path]) -> Path:
    """Writes an ensemble run folder of finished classifier runs and scores it on their validation and test splits.

    Args:
        out: the new ensemble folder (absent or empty).
        members: two or more finished classifier run folders of the same task, data, vocabulary and classes.

    Returns:
        The ensemble folder, with metrics.json (the members' summed training minutes as train_minutes).
    """
    from tfseq.models.heads import get_head
    from tfseq.runs import RunFolder, config_differences, load_trained
    from tfseq.trainer import make_task, weights_digest

    run = RunFolder(Path(out))
    if len(members) < 2:
        raise UserError(f"an ensemble needs two or more runs; {len(members)} given")
    if run.path.exists() and (not run.path.is_dir() or any(run.path.iterdir())):
        raise UserError(f"{run.path} already exists and is not an empty folder; choose a new folder for the ensemble "
                        "(or remove that one)")
    folders = [RunFolder(Path(m)) for m in members]
    if len({f.path.resolve() for f in folders}) < len(folders):
        raise UserError("a run is given twice; give each member once")
    loaded, entries, minutes = [], [], 0.0
    for folder in folders:
        if folder.members.exists():
            raise UserError(f"{folder.path} is itself an ensemble; give the runs it was made of")
        state = folder.read_state() if folder.state.exists() else {}
        if not state.get("finished"):
            raise UserError(f"{folder.path} is not a finished run (no state.json saying so); finish its training first")
        trained = load_trained(folder.path)
        if not get_head(trained.cfg.model.head).classifier:
            raise UserError(f"{folder.path} is a {trained.cfg.task} run; ensembles are of classifier runs")
        if loaded:
            first = loaded[0]
            diffs = [d for d in config_differences(first.cfg, trained.cfg) if d.startswith("data.")]
            if trained.cfg.task != first.cfg.task or diffs:
                shown = ", ".join(diffs[:5]) or f"task {trained.cfg.task} against {first.cfg.task}"
                raise UserError(f"{folder.path} was trained on other data than {folders[0].path} ({shown}); the "
                                "members of an ensemble share their task and data settings")
            if trained.vocab.to_json() != first.vocab.to_json() or trained.classes != first.classes:
                raise UserError(f"{folder.path} has another vocabulary or other classes than {folders[0].path}; "
                                "the members of an ensemble must share both")
            if trained.cfg.model.mask_zero != first.cfg.model.mask_zero:
                raise UserError(f"{folder.path} and {folders[0].path} differ in model.mask_zero; the ensemble "
                                "feeds its members one padding")
        loaded.append(trained)
        entries.append({"run": os.path.relpath(folder.path.resolve(), run.path.resolve()),
                        "weights_sha256": weights_digest(trained.model)})
        minutes += read_json(folder.metrics, "metrics").get("train_minutes", 0.0) if folder.metrics.exists() else 0.0
    first = loaded[0]
    model = ensemble_model([t.model for t in loaded])
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_vocab(first.vocab)
    run.write_classes(first.classes)
    write_json(run.members, {"members": entries})
    run.write_config(first.cfg)  # last, as a training run does: a folder with its config is complete
    print(f"scoring the mean of {len(loaded)} runs on their validation and test splits", flush=True)
    started = time.perf_counter()
    task = make_task(first.cfg)
    metrics = {**task.final_metrics(model, run), "members": [e["run"] for e in entries], "train_minutes": minutes,
               "scoring_minutes": (time.perf_counter() - started) / 60}
    write_json(run.metrics, metrics)
    print("held-out: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float)), flush=True)
    return run.path


def read_members(run) -> list[dict]:
    """The member entries of an ensemble folder's members.json, checked: [{"run": folder, "weights_sha256"}]."""
    found = read_json(run.members, "ensemble members")
    entries = found.get("members") if isinstance(found, dict) else None
    if (not isinstance(entries, list) or len(entries) < 2 or
            not all(isinstance(e, dict) and isinstance(e.get("run"), str) and isinstance(e.get("weights_sha256"), str)
                    for e in entries)):
        raise UserError(f"{run.members} is corrupt (it should list two or more members, each with \"run\" and "
                        "\"weights_sha256\"); make the ensemble again with python -m tfseq.ensemble")
    return [{**e, "run": run.path / e["run"]} for e in entries]


def load_members(run) -> list:
    """Loads an ensemble's member models, refusing a member missing or retrained since the ensemble was made."""
    from tfseq.runs import RunFolder, load_trained
    from tfseq.trainer import weights_digest

    models = []
    for entry in read_members(run):
        if RunFolder(entry["run"]).members.exists():
            raise UserError(f"{entry['run']} (a member of {run.path}) is itself an ensemble; remake {run.path}")
        model = load_trained(entry["run"]).model
        if weights_digest(model) != entry["weights_sha256"]:
            raise UserError(f"{entry['run']}, a member of the ensemble {run.path}, has other weights than when the "
                            "ensemble was made (retrained or replaced); make the ensemble again with python -m "
                            "tfseq.ensemble")
        models.append(model)
    return models


def ensemble_model(models: list):
    """A Keras model from ids to the mean of the members' outputs (class probabilities), each member a sub-model."""
    import keras

    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    outputs = [keras.Model(m.input, m.output, name=f"member_{i}")(ids) for i, m in enumerate(models)]
    return keras.Model(ids, keras.layers.Average(dtype="float32", name="mean")(outputs), name="ensemble")
