"""IMDb reviews: sources, splits, one-pass tokenizing and encoding, and right-padded batches.

Sources: the Stanford archive `aclImdb_v1.tar.gz` read in place, an extracted `aclImdb/` folder, the textbook's CSV
(`review` + `sentiment` or `label`), and TFDS `imdb_reviews`. The 50,000 unlabelled reviews are never read.

Every review is tokenized exactly once: the training split's tokens give the vocabulary and, through the same
per-chunk unique/index arrays, their ids; the other splits are encoded from their own single pass. Encoded splits
are kept as flat int32 ids + row offsets, so epochs after the first do no text work at all.
"""
from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfseq.config import SentimentData
from tfseq.data.text import WordVocab, tokenize
from tfseq.errors import UserError, first_line

_REVIEW = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_URLS = re.compile(r"(?:^|/)aclImdb/(train|test)/urls_(pos|neg)\.txt$")
_MOVIE = re.compile(r"/title/(tt\d+)/")
CHUNK = 1024  # reviews per tokenizer call: large enough to amortise op overhead, small enough to parallelise


@dataclass
class Reviews:
    """Labelled reviews of one split.

    Args:
        texts: the reviews.
        labels: 1 = positive, 0 = negative.
        names: where each review came from (archive member, CSV row, TFDS index), for error messages.
        movies: each review's IMDb movie id when the source has one (archive and folder), else None.
    """

    texts: list[str]
    labels: np.ndarray
    names: list[str]
    movies: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, index: np.ndarray) -> "Reviews":
        """Returns the reviews at `index`, in that order."""
        return Reviews([self.texts[i] for i in index], self.labels[index], [self.names[i] for i in index],
                       None if self.movies is None else [self.movies[i] for i in index])


def concat(parts: list[Reviews]) -> Reviews:
    """Joins splits end to end."""
    movies = None if any(p.movies is None for p in parts) else [m for p in parts for m in p.movies]
    return Reviews([t for p in parts for t in p.texts], np.concatenate([p.labels for p in parts]),
                   [n for p in parts for n in p.names], movies)


def read_source(cfg: SentimentData) -> dict[str, Reviews]:
    """Reads the labelled reviews of the source `cfg.path` names.

    Returns:
        {"train": ..., "test": ...} for sources with the official split (archive, folder, TFDS), or {"all": ...}
        for a CSV. Raises UserError for a missing, truncated or malformed source.
    """
    if not cfg.path:
        raise UserError("no IMDb data given: pass --data PATH (aclImdb_v1.tar.gz, an aclImdb/ folder, a CSV with "
                        "review and sentiment/label columns, or 'tfds')")
    if cfg.path == "tfds":
        return _read_tfds(cfg.tfds_data_dir)
    path = Path(cfg.path)
    if not path.exists():
        raise UserError(f"IMDb data {path} does not exist")
    if path.is_dir():
        return _read_folder(path)
    if path.suffix.lower() == ".csv":
        return {"all": _read_csv(path)}
    return _read_archive(path)


def _official(found: dict, urls: dict, source: Path) -> dict[str, Reviews]:
    """Orders archive/folder reviews by (split, label, number) and attaches movie ids from the urls files."""
    splits = {}
    for split in ("train", "test"):
        keys = sorted(k for k in found if k[0] == split)
        if not keys:
            raise UserError(f"{source} holds no aclImdb/{split}/pos or /neg reviews; is it the IMDb archive?")
        movies = None
        if all((split, label) in urls for label in ("pos", "neg")):
            movies = []
            for _, label, number in keys:
                lines = urls[(split, label)]
                if number >= len(lines):
                    raise UserError(f"{source}: aclImdb/{split}/urls_{label}.txt has no line {number + 1}")
                found_movie = _MOVIE.search(lines[number])
                movies.append(found_movie.group(1) if found_movie else lines[number].strip())
        texts = [found[k] for k in keys]
        labels = np.array([k[1] == "pos" for k in keys], np.int32)
        names = [f"aclImdb/{s}/{label}/{n}_*.txt" for s, label, n in keys]
        splits[split] = Reviews(texts, labels, names, movies)
    return splits


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"review {name} is not UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start})") from None


def _read_archive(path: Path) -> dict[str, Reviews]:
    found, urls = {}, {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                if review := _REVIEW.search(member.name):
                    key = (review.group(1), review.group(2), int(review.group(3)))
                    found[key] = _decode(tar.extractfile(member).read(), member.name)
                elif listing := _URLS.search(member.name):
                    urls[(listing.group(1), listing.group(2))] = _decode(tar.extractfile(member).read(),
                                                                         member.name).splitlines()
            # tarfile ends its member loop quietly at a truncated header; reading the compressed stream to its end
            # makes gzip check the end-of-stream marker, so a cut-off download is an error, not a smaller dataset.
            while tar.fileobj.read(1 << 20):
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise UserError(f"{path} is not a readable .tar.gz archive or is truncated ({type(err).__name__}: "
                        f"{first_line(err, 120)}); download aclImdb_v1.tar.gz again") from None
    return _official(found, urls, path)


def _read_folder(path: Path) -> dict[str, Reviews]:
    root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
    found, urls = {}, {}
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            folder = root / split / label
            if not folder.is_dir():
                raise UserError(f"{path} is not an extracted aclImdb folder: {folder} is missing")
            for entry in os.scandir(folder):
                if entry.is_file() and (review := _REVIEW.search(f"aclImdb/{split}/{label}/{entry.name}")):
                    with open(entry.path, "rb") as fh:
                        found[(split, label, int(review.group(3)))] = _decode(fh.read(), entry.path)
            listing = root / split / f"urls_{label}.txt"
            if listing.is_file():
                urls[(split, label)] = _decode(listing.read_bytes(), str(listing)).splitlines()
    return _official(found, urls, path)


def _read_csv(path: Path) -> Reviews:
    import pandas as pd

    try:
        frame = pd.read_csv(path, encoding="utf-8", dtype={"review": str}, keep_default_na=False)
    except UnicodeDecodeError:
        raw = path.read_bytes()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:  # pandas reports offsets within its read buffer: find the byte itself
            line = raw[: err.start].count(b"\n") + 1
            raise UserError(f"{path} is not UTF-8: byte 0x{raw[err.start]:02x} at offset {err.start} (line {line}) "
                            "cannot be decoded; re-encode the file as UTF-8") from None
        raise UserError(f"{path} could not be read as UTF-8 text by pandas; re-save it as UTF-8 CSV") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise UserError(f"{path} is not a readable CSV ({str(err).strip().splitlines()[0][:160]})") from None
    column = "sentiment" if "sentiment" in frame.columns else "label" if "label" in frame.columns else None
    if "review" not in frame.columns or column is None:
        raise UserError(f"{path} needs a 'review' column and a 'sentiment' or 'label' column; it has: "
                        f"{', '.join(map(str, frame.columns)) or 'none'}")
    mapping = {"1": 1, "0": 0, "pos": 1, "neg": 0, "positive": 1, "negative": 0, "1.0": 1, "0.0": 0}
    values = frame[column].astype(str).str.strip().str.lower()
    labels = values.map(mapping)
    if labels.isna().any():
        row = int(np.flatnonzero(labels.isna().to_numpy())[0])
        raise UserError(f"{path} line {row + 2}: {column} = {str(frame[column].iloc[row])!r}; labels must be 0/1 or "
                        "pos/neg (or positive/negative)")
    names = [f"{path.name} line {i + 2}" for i in range(len(frame))]
    return Reviews(frame["review"].astype(str).tolist(), labels.to_numpy(np.int32), names)


def _read_tfds(data_dir: str) -> dict[str, Reviews]:
    import tensorflow_datasets as tfds

    kwargs = {"data_dir": data_dir} if data_dir else {}
    builder = tfds.builder("imdb_reviews", **kwargs)
    try:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=os.path.join(builder.data_dir_root, "downloads", "manual")))
    except Exception as err:  # TFDS raises many types: checksum, download (offline), missing manual file
        name = type(err).__name__
        if "Checksum" in name:
            raise UserError(
                "TFDS rejected the IMDb archive: its checksum is not the one TFDS registered for imdb_reviews "
                "(a repacked archive, such as ../shared/data/imdb/aclImdb_v1.tar.gz, fails this check); pass the "
                "archive itself instead: --data path/to/aclImdb_v1.tar.gz") from None
        raise UserError(
            f"TFDS could not prepare imdb_reviews in {builder.data_dir_root} ({name}); offline, put the original "
            "aclImdb_v1.tar.gz in <data_dir>/downloads/manual/, or pass the archive itself with --data") from None
    splits = {}
    for split in ("train", "test"):
        texts, labels = [], []
        for text, label in tfds.as_numpy(builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)):
            texts.append(text.decode("utf-8"))
            labels.append(int(label))
        splits[split] = Reviews(texts, np.array(labels, np.int32), [f"tfds imdb_reviews/{split}[{i}]"
                                                                     for i in range(len(texts))])
    return splits


def make_splits(source: dict[str, Reviews], cfg: SentimentData) -> tuple[dict[str, Reviews], str]:
    """Cuts the source into train / val / test.

    official: the source's 25k train / 25k test; validation = all reviews of a seeded random val_fraction of the
    training MOVIES (movies never straddle train and validation; the official test movies are disjoint already).
    A source without movie ids (TFDS) falls back to a random carve, and says so. textbook: the 50k labelled reviews
    shuffled with split_seed; first 50% test, next 40% train, last 10% validation (25k / 20k / 5k).

    Returns:
        ({"train", "val", "test"}: Reviews, a note on how validation was carved).
    """
    rng = np.random.default_rng(cfg.split_seed)
    if cfg.split == "textbook":
        everything = source["all"] if "all" in source else concat([source["train"], source["test"]])
        order = rng.permutation(len(everything))
        n_test, n_train = len(order) // 2, len(order) * 4 // 10
        splits = {"test": everything.take(order[:n_test]), "train": everything.take(order[n_test:n_test + n_train]),
                  "val": everything.take(order[n_test + n_train:])}
        note = "textbook split: shuffled labelled reviews, 50% test / 40% train / 10% validation"
    else:
        if "all" in source:
            raise UserError("a CSV has no official train/test split; use --set data.split=textbook")
        train = source["train"]
        if train.movies is not None:
            movies = np.array(sorted(set(train.movies)))
            held = set(rng.permutation(movies)[: max(1, round(len(movies) * cfg.val_fraction))])
            is_val = np.array([m in held for m in train.movies])
            note = f"validation: all reviews of {len(held)} of {len(movies)} training movies"
        else:
            is_val = np.zeros(len(train), bool)
            is_val[rng.permutation(len(train))[: round(len(train) * cfg.val_fraction)]] = True
            note = ("validation: a random carve (this source has no movie ids, so validation shares movies with "
                    "train and overstates accuracy)")
        splits = {"train": train.take(np.flatnonzero(~is_val)), "val": train.take(np.flatnonzero(is_val)),
                  "test": source["test"]}
    if cfg.limit:
        splits = {name: _stratified(part, cfg.limit, rng) for name, part in splits.items()}
    for name, part in splits.items():
        if len(part) == 0 or len(set(part.labels.tolist())) < 2:
            raise UserError(f"the {name} split has {len(part)} reviews and needs both labels; raise data.limit or "
                            "check the source")
    return splits, note


def _stratified(part: Reviews, limit: int, rng: np.random.Generator) -> Reviews:
    """A sample of `limit` reviews with the labels in their original proportion, in the original order."""
    if limit >= len(part):
        return part
    keep = []
    for label in (0, 1):
        index = np.flatnonzero(part.labels == label)
        keep.append(rng.permutation(index)[: round(limit * len(index) / len(part))])
    return part.take(np.sort(np.concatenate(keep)))


@dataclass
class Encoded:
    """A split as ids: review i is `ids[splits[i]:splits[i + 1]]`, never empty; labels alongside.

    Args:
        ids: int32 flat token ids.
        splits: int64 row offsets, len(reviews) + 1.
        labels: int32 labels.
    """

    ids: np.ndarray
    splits: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray = field(init=False)

    def __post_init__(self):
        self.lengths = np.diff(self.splits)


def tokenized_chunks(texts, tokenizer: str) -> list[tuple]:
    """Tokenizes texts in chunks on all cores; per chunk: its unique tokens, an index into them, tokens per review.

    Each chunk's tokens are reduced to their unique values (in order of first appearance) and an index, so that
    counting and encoding work on ~10^4 unique strings per chunk instead of ~10^5 tokens, inside TensorFlow. The
    chunks run as eager TensorFlow ops on a thread pool (the ops release the GIL; no tracing to pay for).

    Args:
        texts: a list of str, or a tf.string tensor of them.
        tokenizer: "book" or "lower".

    Returns:
        A list of (unique: tf.string tensor, index: int32 tensor, counts: int32 tensor, lengths: int32 tensor).
    """
    import tensorflow as tf

    workers = max(1, min(os.cpu_count() or 1, 8))

    def chunk(k):
        # A list is converted chunk by chunk: the text is never held twice, in Python and in TensorFlow.
        piece = tf.constant(texts[k * CHUNK:(k + 1) * CHUNK], tf.string) if isinstance(texts, list) else \
            texts[k * CHUNK:(k + 1) * CHUNK]
        tokens = tokenize(piece, tokenizer, variant=k % workers)
        unique, index, counts = tf.unique_with_counts(tokens.flat_values, out_idx=tf.int32)
        return unique, index, counts, tf.cast(tokens.row_lengths(), tf.int32)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(chunk, range(-(-len(texts) // CHUNK))))


def build_vocab(chunks: list, tokenizer: str, max_tokens: int = 0, min_count: int = 1) -> WordVocab:
    """The vocabulary of tokenized chunks: tokens seen >= min_count times, the max_tokens most frequent if capped.

    Args:
        chunks: (unique, index, counts, lengths) tuples from `tokenized_chunks` of the training split.
        tokenizer: the tokenizer's name, stored with the vocabulary.
        max_tokens: cap (0 = none); ties go to the token seen first.
        min_count: minimum count in the training split.

    Returns:
        A WordVocab with tokens in order of first appearance (the textbook encoder's order).
    """
    import tensorflow as tf

    if not chunks:
        return WordVocab([], tokenizer)
    # tf.unique keeps first-appearance order, and chunks are in order: the global order is the textbook's.
    tokens, where = tf.unique(tf.concat([c[0] for c in chunks], 0), out_idx=tf.int32)
    counts = tf.math.unsorted_segment_sum(tf.concat([c[2] for c in chunks], 0), where, tf.size(tokens)).numpy()
    keep = counts >= min_count
    if max_tokens and keep.sum() > max_tokens:
        ranked = np.argsort(-np.where(keep, counts, -1), kind="stable")  # stable: the earlier-seen token wins ties
        keep = np.zeros_like(keep)
        keep[ranked[:max_tokens]] = True
    return WordVocab([t.decode("utf-8") for t in tokens.numpy()[keep].tolist()], tokenizer)


def encode_chunks(chunks, vocab: WordVocab, labels: np.ndarray, max_length: int = 0,
                  truncate: str = "last") -> Encoded:
    """Turns tokenized chunks into ids: OOV tokens get vocab.oov_id; an empty review becomes [oov_id].

    Args:
        chunks: (unique, index, counts, lengths) tuples from `tokenized_chunks`.
        vocab: the vocabulary.
        labels: the reviews' labels.
        max_length: tokens kept per review (0 = all).
        truncate: "last" keeps a long review's last max_length tokens (the textbook), "first" its first.
    """
    import tensorflow as tf

    table = vocab_table(vocab)
    ids = [tf.gather(tf.cast(table.lookup(unique), tf.int32), index).numpy() for unique, index, _, _ in chunks]
    ids = np.concatenate(ids) if ids else np.zeros(0, np.int32)
    lengths = np.concatenate([c[3].numpy() for c in chunks]).astype(np.int64) if chunks else np.zeros(0, np.int64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    if max_length:
        if truncate == "last":
            starts = np.maximum(starts, ends - max_length)
        else:
            ends = np.minimum(ends, starts + max_length)
    empty = ends == starts
    if not empty.any() and np.array_equal(ends - starts, lengths):
        return Encoded(ids, np.concatenate([[0], ends]), np.asarray(labels, np.int32))  # nothing to cut or fill
    # Empty reviews read one OOV id from a sentinel slot: a fully masked row breaks cuDNN and pooling.
    ids = np.append(ids, np.int32(vocab.oov_id))
    starts, ends = np.where(empty, len(ids) - 1, starts), np.where(empty, len(ids), ends)
    kept = ends - starts
    splits = np.concatenate([[0], np.cumsum(kept)])
    gather = np.arange(splits[-1]) - np.repeat(splits[:-1], kept) + np.repeat(starts, kept)
    return Encoded(ids[gather], splits, np.asarray(labels, np.int32))


def vocab_table(vocab: WordVocab):
    """A tf.lookup table from token to id (1..V), OOV tokens to vocab.oov_id."""
    import tensorflow as tf

    keys = tf.constant(vocab.tokens or [""], tf.string)
    values = tf.range(1, max(len(vocab.tokens), 1) + 1, dtype=tf.int64)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values),
                                     default_value=tf.constant(vocab.oov_id, tf.int64))


def encode_splits(splits: dict[str, Reviews], cfg: SentimentData) -> tuple[WordVocab, dict[str, Encoded]]:
    """Tokenizes every split once, builds the vocabulary from train, and encodes all splits.

    Each split's texts are released as soon as it is tokenized (`texts` becomes []), so the reviews are never held
    twice: only their per-chunk unique tokens and indices stay.

    Returns:
        (vocabulary, {split name: Encoded}).
    """
    chunks = {}
    for name, part in splits.items():
        chunks[name] = tokenized_chunks(part.texts, cfg.tokenizer)
        part.texts = []
    vocab = build_vocab(chunks["train"], cfg.tokenizer, cfg.max_tokens, cfg.min_count)
    encoded = {name: encode_chunks(chunks[name], vocab, part.labels, cfg.max_length, cfg.truncate)
               for name, part in splits.items()}
    return vocab, encoded


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int, bucket: bool) -> list[np.ndarray]:
    """The batches (arrays of review indices) of one training epoch, drawn from (seed, epoch) alone.

    Without bucketing: a shuffled order cut into batches. With bucketing: the shuffled order is cut into pools of
    64 batches, each pool sorted by length and cut into batches, and the batches shuffled, so that a batch holds
    reviews of similar length (little padding) while every epoch still mixes the data. Either way an epoch has
    ceil(n / batch_size) batches, and a resumed run sees exactly the batches an uninterrupted one would.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    if bucket:
        pool = 64 * batch_size
        order = np.concatenate([p[np.argsort(lengths[p], kind="stable")]
                                for p in np.split(order, range(pool, len(order), pool))])
    batches = np.split(order, range(batch_size, len(order), batch_size))
    if bucket:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def _pad_to_multiple(ids, multiple: int):
    """Right-pads int ids [batch, time] with 0 so that time is a multiple of `multiple`."""
    import tensorflow as tf

    if multiple <= 1:
        return ids
    width = tf.shape(ids)[1]
    return tf.pad(ids, [[0, 0], [0, (width + multiple - 1) // multiple * multiple - width]])


def _batcher(data: Encoded, pad_multiple: int):
    """A function from review indices to a right-padded (int32 [batch, time], float32 [batch, 1]) batch."""
    import tensorflow as tf

    rows = tf.RaggedTensor.from_row_splits(data.ids, data.splits)
    labels = tf.constant(data.labels, tf.float32)[:, None]
    return lambda index: (_pad_to_multiple(tf.gather(rows, index).to_tensor(), pad_multiple), tf.gather(labels, index))


def train_dataset(data: Encoded, batch_size: int, seed: int, first_epoch: int, epochs: int, bucket: bool,
                  pad_multiple: int = 1):
    """Right-padded (ids, label) batches for epochs first_epoch .. epochs - 1, one epoch after the other.

    Each batch is padded to its longest review, rounded up to a multiple of `pad_multiple` (bounded shapes).

    Returns:
        (tf.data.Dataset of (int32 [batch, time], float32 [batch, 1]), batches per epoch).
    """
    import tensorflow as tf

    def index_batches():
        for epoch in range(first_epoch, epochs):
            yield from epoch_batches(data.lengths, batch_size, seed, epoch, bucket)

    ds = tf.data.Dataset.from_generator(index_batches, output_signature=tf.TensorSpec([None], tf.int64))
    ds = ds.map(_batcher(data, pad_multiple), num_parallel_calls=2).prefetch(tf.data.AUTOTUNE)
    return ds, -(-len(data.lengths) // batch_size)


def eval_dataset(data: Encoded, batch_size: int, by_length: bool = True, pad_multiple: int = 1,
                 exact_lengths: bool = False):
    """Right-padded (ids, label) batches of a whole split, cached after the first pass.

    Args:
        data: the encoded split.
        batch_size: reviews per batch.
        by_length: visit reviews shortest first (least padding); False keeps the split's order.
        pad_multiple: pad each batch's length up to a multiple of this.
        exact_lengths: only reviews of one length share a batch, and nothing is padded (visits reviews shortest
            first): for models that read padding (no mask), whose score of a review would otherwise depend on the
            longest review beside it.

    Returns:
        (dataset, order): the batches, and the split's review indices in the order the batches visit them.
    """
    import tensorflow as tf

    n = len(data.lengths)
    order = np.argsort(data.lengths, kind="stable") if by_length or exact_lengths else np.arange(n)
    batch_splits = np.arange(0, n, batch_size)
    if exact_lengths:
        pad_multiple = 1
        sorted_lengths = data.lengths[order]
        changes = np.flatnonzero(np.diff(sorted_lengths)) + 1
        # Within each run of equal lengths, a new batch every batch_size reviews.
        run_starts = np.concatenate([[0], changes])
        run_ends = np.concatenate([changes, [n]])
        batch_splits = np.concatenate([np.arange(a, b, batch_size) for a, b in zip(run_starts, run_ends)] or
                                      [np.zeros(0, np.int64)])
    batch_splits = np.append(batch_splits, n)
    # All batches as one [batch, (review), (token)] ragged tensor: slicing it costs tf.data microseconds per batch.
    rows = tf.gather(tf.RaggedTensor.from_row_splits(data.ids, data.splits), order)
    ids = tf.RaggedTensor.from_row_splits(rows, batch_splits)
    labels = tf.RaggedTensor.from_row_splits(data.labels[order].astype(np.float32)[:, None], batch_splits)
    ds = tf.data.Dataset.from_tensor_slices((ids, labels))
    return ds.map(lambda x, y: (_pad_to_multiple(x.to_tensor(), pad_multiple), y)).cache().prefetch(2), order
