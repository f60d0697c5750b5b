"""Scores of predicted tags against true tags, sentence by sentence: per token and, for chunk tags, per chunk.

Per token: accuracy, each tag's precision / recall / F1 (the classifier's, tfseq.scores), the confusion matrix, and
micro-averaged scores over the tags that matter (punctuation restoration scores every tag but O). Per chunk: the
conlleval rules of the CoNLL shared tasks, for IOB1, IOB2 (BIO) and IOBES tags: a predicted chunk counts only when its
type and both boundaries equal a true chunk's. Plain NumPy and Python; results are plain values, ready for JSON.
"""
from __future__ import annotations

import numpy as np

from tfseq.scores import classification_scores

OUTSIDE = "O"
CHUNK_PREFIXES = ("B-", "I-", "E-", "S-")


def is_chunk_tagset(tags) -> bool:
    """Whether a tag set is made of chunk tags: every tag is O or starts with B-, I-, E- or S-, and one is not O.

    Args:
        tags: the tag names (any iterable of strings).

    Returns:
        True for e.g. {"O", "B-PER", "I-PER"}; False for {"O", "COMMA"}, {"lower", "Title"} or {"O"}.
    """
    tags = set(tags)
    return all(tag == OUTSIDE or tag.startswith(CHUNK_PREFIXES) for tag in tags) and bool(tags - {OUTSIDE})


def chunks(tags: list[str]) -> list[tuple[str, int, int]]:
    """The chunks of one sentence, read with conlleval's rules (its startOfChunk / endOfChunk).

    A chunk starts at B-X and S-X, at I-X or E-X after O, E- or S-, and wherever the type changes; it ends before O,
    B- and S-, after E- and S-, and wherever the type changes. So an I-X after O starts a chunk (IOB1), B-X I-Y is two
    chunks, and IOB1, IOB2 and IOBES tags all read as they mean. conlleval itself has no rule for S- or for B- after
    E- (it would join `B-X E-X B-X E-X` into one chunk); these rules agree with it on every sequence it handles.

    Args:
        tags: the sentence's tags, each O or B-/I-/E-/S- and a type (the type is all after the first hyphen).

    Returns:
        (type, start, end) per chunk in order, end exclusive: ["B-PER", "I-PER", "O", "I-LOC"] ->
        [("PER", 0, 2), ("LOC", 3, 4)].

    Raises:
        ValueError: on a tag that is neither O nor B-/I-/E-/S- and a type.
    """
    found = []
    start = None
    prev, prev_type = OUTSIDE, ""
    # A trailing O closes a chunk that runs to the sentence's end, as conlleval's blank line between sentences does.
    for i, tag in enumerate([*tags, OUTSIDE]):
        if tag == OUTSIDE:
            part, kind = OUTSIDE, ""
        elif tag.startswith(CHUNK_PREFIXES):
            part, kind = tag[0], tag[2:]
        else:
            raise ValueError(f"tag {tag!r} at position {i} is not a chunk tag: expected O, or B-, I-, E- or S- and a "
                             "type")
        changed = prev != OUTSIDE and kind != prev_type
        if start is not None and (prev in ("E", "S") or (prev in ("B", "I") and part in ("B", "S", OUTSIDE))
                                  or changed):
            found.append((prev_type, start, i))
            start = None
        # Every non-O tag is inside a chunk: when one starts, the chunk before it has just ended above.
        if (part in ("B", "S") or (part in ("I", "E") and prev in (OUTSIDE, "E", "S"))
                or (part != OUTSIDE and kind != prev_type)):
            start = i
        prev, prev_type = part, kind
    return found


def chunk_scores(true: list[list[str]], pred: list[list[str]]) -> dict:
    """conlleval's scores: chunk precision, recall and F1, overall and per chunk type, and token accuracy.

    Args:
        true: the true tags, one list per sentence (chunk tags: see `chunks`).
        pred: the predicted tags, as many per sentence.

    Returns:
        {"tokens", "accuracy" (of the whole tags), "true_chunks", "pred_chunks", "correct", "precision", "recall",
        "f1", "per_type": {type: {"precision", "recall", "f1", "true_chunks", "pred_chunks", "correct"}}}, types in
        sorted order; fractions in [0, 1] (conlleval prints them as percentages), 0 where the denominator is 0.

    Raises:
        ValueError: on different numbers of sentences or of tags in a sentence, or a tag that is not a chunk tag.
    """
    _check_same_lengths(true, pred, "predicted")
    counts: dict[str, list[int]] = {}  # type -> [true chunks, predicted chunks, correct]
    tokens = right = 0
    for true_tags, pred_tags in zip(true, pred):
        true_chunks, pred_chunks = set(chunks(true_tags)), set(chunks(pred_tags))
        for column, found in enumerate((true_chunks, pred_chunks, true_chunks & pred_chunks)):
            for kind, _, _ in found:
                counts.setdefault(kind, [0, 0, 0])[column] += 1
        tokens += len(true_tags)
        right += sum(a == b for a, b in zip(true_tags, pred_tags))
    n_true, n_pred, correct = (sum(c[column] for c in counts.values()) for column in range(3))
    return {
        "tokens": tokens,
        "accuracy": right / tokens if tokens else 0.0,
        "true_chunks": n_true,
        "pred_chunks": n_pred,
        "correct": correct,
        **_precision_recall_f1(correct, n_true, n_pred),
        "per_type": {
            kind: {**_precision_recall_f1(c[2], c[0], c[1]), "true_chunks": c[0], "pred_chunks": c[1], "correct": c[2]}
            for kind, c in sorted(counts.items())
        },
    }


def tag_scores(true: list[list[str]], pred: list[list[str]], tags: list[str], ignore=(OUTSIDE,),
               mask: list[list[bool]] | None = None) -> dict:
    """Per-token scores of predicted tags, and chunk scores when the tags are chunk tags.

    The micro-averaged scores count the tokens whose true or predicted tag is not ignored: a true positive is a token
    whose predicted tag equals its true tag and is not ignored (with ignore=("O",), the F1 of punctuation
    restoration). Macro-F1 averages the F1 of the tags that are not ignored and occur (as true or predicted tags).

    Args:
        true: the true tags, one list per sentence.
        pred: the predicted tags, as many per sentence.
        tags: every tag name that occurs, in the order of the confusion matrix.
        ignore: the tags left out of the micro and macro averages (a tag absent from `tags` is fine).
        mask: optional, one bool per token: score only the tokens marked True (e.g. all but sentence-initial words).
            Chunk scores always read whole sentences: a chunk is a span, and conlleval leaves no token out.

    Returns:
        {"accuracy", "tokens_scored", "precision_non_O", "recall_non_O", "f1_non_O", "macro_f1_non_O" (the suffix
        names the ignored tags: "non_" and their names joined by "_", or "all" when none are), "per_tag": {tag:
        {"precision", "recall", "f1", "support"}}, "confusion" (rows true, columns predicted, in `tags` order)}, plus
        "chunks" (see `chunk_scores`) when is_chunk_tagset(tags); fractions, 0 where a denominator is 0.

    Raises:
        ValueError: on different numbers of sentences or of tags (or mask values) in a sentence, a tag not in
            `tags`, repeated tag names, `ignore` given as one string, or no token to score.
    """
    if isinstance(ignore, str):  # ("O") is the string "O": iterating it would ignore its characters
        raise ValueError(f"ignore must be a tuple or list of tag names, got the string {ignore!r}")
    _check_same_lengths(true, pred, "predicted")
    index = {tag: i for i, tag in enumerate(tags)}
    true_ids, pred_ids = _tag_ids(true, index, "true"), _tag_ids(pred, index, "predicted")
    if mask is not None:
        _check_same_lengths(true, mask, "mask")
        keep = np.fromiter((bool(m) for sentence in mask for m in sentence), bool, count=len(true_ids))
        true_ids, pred_ids = true_ids[keep], pred_ids[keep]
    n, k = len(true_ids), len(tags)
    if not n:
        raise ValueError("no token to score: the sentences are empty or the mask leaves every token out")

    # The classifier's scores need class probabilities only for the loss and AUC, which hard tags do not have: a
    # uniform broadcast view fills the argument without an n x k array (the two keys are dropped below).
    uniform = np.broadcast_to(np.full(k, 1.0 / k), (n, k))
    base = classification_scores(uniform, true_ids, list(tags), predicted=pred_ids)
    confusion = np.asarray(base["confusion"])

    counted = np.array([tag not in ignore for tag in tags], bool)
    true_counted, pred_counted = counted[true_ids], counted[pred_ids]
    hits = int(np.sum(true_counted & (true_ids == pred_ids)))
    micro = _precision_recall_f1(hits, int(true_counted.sum()), int(pred_counted.sum()))
    occurs = (confusion.sum(axis=0) + confusion.sum(axis=1)) > 0
    macro = [base["per_class"][tag]["f1"] for i, tag in enumerate(tags) if counted[i] and occurs[i]]

    suffix = "non_" + "_".join(ignore) if ignore else "all"
    scores = {
        "accuracy": base["accuracy"],
        "tokens_scored": n,
        **{f"{name}_{suffix}": value for name, value in micro.items()},
        f"macro_f1_{suffix}": float(np.mean(macro)) if macro else 0.0,
        "per_tag": base["per_class"],
        "confusion": base["confusion"],
    }
    if is_chunk_tagset(tags):
        scores["chunks"] = chunk_scores(true, pred)
    return scores


def format_report(scores: dict) -> str:
    """A short table of `tag_scores`' results for the training log: per tag precision / recall / F1 / support, then
    the accuracy, the micro and macro averages and, for chunk tags, conlleval's lines.

    Args:
        scores: what `tag_scores` returned.

    Returns:
        the lines joined by newlines (no trailing newline), scores as percentages.
    """
    width = max(len("tag"), *(len(tag) for tag in scores["per_tag"]))
    lines = [f"{'tag':<{width}}  precision   recall       F1   support"]
    for tag, s in scores["per_tag"].items():
        lines.append(f"{tag:<{width}}  {s['precision']:>9.2%}  {s['recall']:>7.2%}  {s['f1']:>7.2%}  "
                     f"{s['support']:>8,}")
    lines.append(f"accuracy {scores['accuracy']:.2%} of {scores['tokens_scored']:,} tokens")
    suffix = next(key for key in scores if key.startswith("f1_"))[len("f1_"):]
    lines.append(f"{suffix} (micro): precision {scores['precision_' + suffix]:.2%}, recall "
                 f"{scores['recall_' + suffix]:.2%}, F1 {scores['f1_' + suffix]:.2%}; macro-F1 "
                 f"{scores['macro_f1_' + suffix]:.2%}")
    if "chunks" in scores:
        c = scores["chunks"]
        lines.append(f"chunks (conlleval): {c['true_chunks']:,} true, {c['pred_chunks']:,} found, {c['correct']:,} "
                     f"correct; precision {c['precision']:.2%}, recall {c['recall']:.2%}, F1 {c['f1']:.2%}")
        type_width = max(len(kind) for kind in c["per_type"]) if c["per_type"] else 0
        for kind, s in c["per_type"].items():
            lines.append(f"  {kind:>{type_width}}: precision {s['precision']:7.2%}; recall {s['recall']:7.2%}; "
                         f"F1 {s['f1']:7.2%}  {s['pred_chunks']:,} found")
    return "\n".join(lines)


def _precision_recall_f1(correct: int, n_true: int, n_pred: int) -> dict:
    """Precision, recall and F1 from counts, each 0 where its denominator is 0 (as conlleval prints them)."""
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _check_same_lengths(true: list, other: list, name: str) -> None:
    """Raises ValueError unless `other` has as many sentences as `true` and as many entries in each."""
    if len(true) != len(other):
        raise ValueError(f"{len(true)} sentences of true tags but {len(other)} of {name}")
    for i, (a, b) in enumerate(zip(true, other)):
        if len(a) != len(b):
            raise ValueError(f"sentence {i} has {len(a)} true tags but {len(b)} {name}")


def _tag_ids(sentences: list[list[str]], index: dict[str, int], name: str) -> np.ndarray:
    """The tags of all sentences, flattened, as int64 ids; ValueError naming a tag not in `index`."""
    flat = [tag for sentence in sentences for tag in sentence]
    try:
        return np.fromiter((index[tag] for tag in flat), np.int64, count=len(flat))
    except KeyError as err:
        tag = err.args[0]
        where = next(i for i, sentence in enumerate(sentences) if tag in sentence)
        raise ValueError(f"{name} tag {tag!r} (sentence {where}) is not among the {len(index)} tags given; pass "
                         "every tag that occurs, true or predicted") from None
