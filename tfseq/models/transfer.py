"""A classifier started from a trained word language model (model.init_from, Dai & Le 2015): the LM's embedding row
of every token the two vocabularies share, and its recurrent layers in order. The rest starts fresh."""
from __future__ import annotations

from pathlib import Path

from tfseq.errors import UserError
from tfseq.models.factory import cell_kind, rnn_layers

# Below this share of the tokens the two vocabularies could share, the message names the LM's tokenizer.
LOW_COVERAGE = 0.5


def init_from_run(model, vocab, path: str) -> str:
    """Copies a language model run's embedding (by token) and recurrent weights into a new classifier.

    Tokens of the classifier's vocabulary that the LM lacks, and its out-of-vocabulary id, take the LM's "<unk>"
    row: what the LM read for them. A bidirectional classifier's forward layers take the LM's layers, its backward
    layers start fresh (the LM read the text forwards only); layers beyond the LM's start fresh too.

    Args:
        model: the built classifier (layers `embedding`, `rnn_0`, ...).
        vocab: the classifier's WordVocab.
        path: the language model's run folder.

    Returns:
        One line saying what was copied. Raises UserError when the run is not a word LM or a shape does not fit.
    """
    from keras import layers

    from tfseq.data.words import UNK
    from tfseq.runs import load_trained

    where = f"model.init_from = {path!r}"
    if not Path(path).is_dir():
        raise UserError(f"{where}: no such run folder; give the folder of a finished word language model run "
                        "(python -m tfseq.train lm --set data.unit=word)")
    source = load_trained(path)
    tokens = getattr(source.vocab, "tokens", None)
    if source.cfg.model.head != "next_token" or tokens is None or tokens[:1] != [UNK]:
        kind = "a character language model" if source.cfg.model.head == "next_token" else f"a {source.cfg.task} run"
        raise UserError(f"{where} is {kind}; a classifier starts from a word language model (python -m tfseq.train "
                        "lm --set data.unit=word)")
    src_rows = source.model.get_layer("embedding").get_weights()[0]
    embedding = model.get_layer("embedding")
    rows = embedding.get_weights()[0]
    if rows.shape[1] != src_rows.shape[1]:
        raise UserError(f"{where}: its embedding has {src_rows.shape[1]} dimensions, this model's {rows.shape[1]}; set "
                        f"model.embedding_dim = {src_rows.shape[1]}")
    index = {token: i for i, token in enumerate(tokens)}
    unk = index[UNK]
    found = [index.get(token) for token in vocab.tokens]
    for i, row in enumerate(found, start=1):  # id 0 is padding
        rows[i] = src_rows[unk if row is None else row]
    rows[vocab.oov_id] = src_rows[unk]
    embedding.set_weights([rows])

    src_layers, layers_here = rnn_layers(source.model), rnn_layers(model)
    for i, (src, dst) in enumerate(zip(src_layers, layers_here)):
        target = dst.forward_layer if isinstance(dst, layers.Bidirectional) else dst
        src_kind, kind = cell_kind(src.cell).upper(), cell_kind(target.cell).upper()
        if (src_kind, src.cell.units) != (kind, target.cell.units):
            raise UserError(f"{where}: its layer rnn_{i} is {src_kind} {src.cell.units}, this model's {kind} "
                            f"{target.cell.units}; set model.cell = {src_kind.lower()!r} and model.units = "
                            f"{src.cell.units}")
        shapes = [w.shape for w in src.get_weights()], [w.shape for w in target.get_weights()]
        if shapes[0] != shapes[1]:
            raise UserError(f"{where}: layer rnn_{i}'s weights are {shapes[0]} there, {shapes[1]} here (a "
                            "bidirectional layer below it doubles its input); set model.layers = 1 or "
                            "model.bidirectional = false")
        target.set_weights(src.get_weights())
    copied = min(len(src_layers), len(layers_here))
    known = sum(row is not None for row in found)
    line = (f"started from {path}: embedding rows of {known:,} of {len(found):,} tokens (the rest: its {UNK} row; "
            f"the LM has {len(tokens):,}), {copied} recurrent layer{'s' * (copied != 1)}"
            + (" (forward directions; the backward ones start fresh)" if any(
                isinstance(d, layers.Bidirectional) for d in layers_here[:copied]) else ""))
    lm_tokenizer = "words_lower" if source.vocab.lowercase else "words"
    if known < LOW_COVERAGE * min(len(found), len(tokens)) and vocab.tokenizer != lm_tokenizer:
        line += (f"; few tokens are shared: tokenize as the LM did (data.tokenizer = {lm_tokenizer!r}, not "
                 f"{vocab.tokenizer!r})")
    return line
