"""Token sequences with one tag per token, and the two files they are kept in: CoNLL columns and JSON lines.

CoNLL: one token per line, whitespace-separated columns (the token and the tag chosen by index), a blank line
between sentences, `-DOCSTART-` lines skipped (they also end a sentence). JSON lines: one object per line,
`{"tokens": [...], "tags": [...]}`. The format follows the file name: .jsonl / .json / .ndjson are JSON lines,
anything else is CoNLL. No TensorFlow here: the config and the data tools import this module.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tfseq.errors import UserError
from tfseq.files import atomic_write, decode_utf8

JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
DOCSTART = "-DOCSTART-"
_LINE_END = re.compile(r"\r\n|\r|\n")  # not str.splitlines: it also splits at U+2028, \x1c, ... inside a token
_COLUMNS = re.compile(r"[ \t]+")
_EXAMPLE = '{"tokens": ["The", "cat"], "tags": ["O", "O"]}'


@dataclass
class Tagged:
    """Sentences of tokens with one tag per token.

    Args:
        tokens: one list of tokens per sentence.
        tags: one list of tags per sentence, as long as its tokens.
    """

    tokens: list[list[str]]
    tags: list[list[str]]

    def __post_init__(self):
        if len(self.tokens) != len(self.tags) or any(len(a) != len(b) for a, b in zip(self.tokens, self.tags)):
            raise ValueError("Tagged needs one tag list per sentence, as long as its token list")

    def __len__(self) -> int:
        return len(self.tokens)

    def take(self, indices) -> "Tagged":
        """Returns the sentences at `indices`, in that order."""
        indices = [int(i) for i in indices]
        return Tagged([self.tokens[i] for i in indices], [self.tags[i] for i in indices])

    def token_count(self) -> int:
        """The number of tokens of all sentences."""
        return sum(len(sentence) for sentence in self.tokens)

    def tag_counts(self) -> dict[str, int]:
        """{tag: how many tokens have it}, most frequent first, ties by name."""
        counts = Counter(tag for sentence in self.tags for tag in sentence)
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def tag_set(self) -> list[str]:
        """The distinct tags, most frequent first, ties by name."""
        return list(self.tag_counts())


def is_json_lines(path: str | Path) -> bool:
    """Whether a tagged file's name says JSON lines (else it is CoNLL)."""
    return Path(path).suffix.lower() in JSON_SUFFIXES


def read_tagged(path: str | Path, token_column: int = 0, tag_column: int = -1) -> Tagged:
    """Reads a tagged file: JSON lines when the name ends in .jsonl / .json / .ndjson, else CoNLL columns.

    UTF-8 with or without a byte-order mark; LF, CRLF or CR line ends.

    Args:
        path: the file.
        token_column: CoNLL: the column holding the token (0-based; negative counts from the end).
        tag_column: CoNLL: the column holding the tag (negative counts from the end: -1 is the last).

    Returns:
        The sentences. Raises UserError naming the file and line for a missing or non-UTF-8 file, a CoNLL line
        without the chosen columns, a JSON line that is not an object with equally long "tokens" and "tags" lists
        of non-empty strings, or a file without any sentence.
    """
    path = Path(path)
    if token_column == tag_column:
        raise UserError(f"data.token_column and data.tag_column are both {token_column}: the token and its tag need "
                        "two different columns")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"tagged file {path} does not exist; give a CoNLL file (a token and its tag per line) or a "
                        ".jsonl file") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a folder; give the path of a CoNLL or .jsonl file") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from None
    lines = _LINE_END.split(decode_utf8(raw, str(path)))
    json_lines = is_json_lines(path)
    tagged = _read_json_lines(path, lines) if json_lines else _read_conll(path, lines, token_column, tag_column)
    if not tagged.tokens:
        layout = (f"one object per line, such as {_EXAMPLE}" if json_lines else
                  "one token and its tag per line, a blank line between sentences")
        raise UserError(f"{path} holds no sentence; a tagged file needs {layout}")
    return tagged


def _read_conll(path: Path, lines: list[str], token_column: int, tag_column: int) -> Tagged:
    tokens, tags, sentence, sentence_tags = [], [], [], []
    for number, line in enumerate(lines, 1):
        line = line.strip(" \t")
        columns = _COLUMNS.split(line) if line else []
        if not columns or columns[0] == DOCSTART:
            if sentence:
                tokens.append(sentence)
                tags.append(sentence_tags)
                sentence, sentence_tags = [], []
            continue
        n = len(columns)
        token_at, tag_at = token_column % n, tag_column % n
        if not (-n <= token_column < n and -n <= tag_column < n) or token_at == tag_at:
            raise UserError(
                f"{path}:{number}: {n} column(s) ({line[:60]!r}), but data.token_column = {token_column} and "
                f"data.tag_column = {tag_column} need {_columns_needed(token_column, tag_column)} distinct columns; "
                "separate the token and its tag by a tab or a space, or set data.token_column / data.tag_column")
        sentence.append(columns[token_at])
        sentence_tags.append(columns[tag_at])
    if sentence:  # the last sentence needs no blank line after it
        tokens.append(sentence)
        tags.append(sentence_tags)
    return Tagged(tokens, tags)


def _columns_needed(token_column: int, tag_column: int) -> int:
    """The fewest columns in which both indices exist and name two different columns."""
    n = 2
    while not (-n <= token_column < n and -n <= tag_column < n and token_column % n != tag_column % n):
        n += 1
    return n


def _read_json_lines(path: Path, lines: list[str]) -> Tagged:
    tokens, tags = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except ValueError as err:
            raise UserError(f"{where}: not JSON ({getattr(err, 'msg', err)}); each line must be one object such as "
                            f"{_EXAMPLE}") from None
        if not isinstance(record, dict):
            hint = " (a .json file is read as JSON lines, not as one array)" if isinstance(record, list) else ""
            raise UserError(f"{where}: a JSON {type(record).__name__}, not an object{hint}; each line must be one "
                            f"object such as {_EXAMPLE}")
        for key in ("tokens", "tags"):
            if not isinstance(record.get(key), list):
                found = "missing" if key not in record else f"a {type(record[key]).__name__}"
                raise UserError(f"{where}: \"{key}\" is {found}, not a list; each line must be one object such as "
                                f"{_EXAMPLE}")
            for i, item in enumerate(record[key]):
                if not isinstance(item, str) or not item:
                    raise UserError(f"{where}: {key}[{i}] is {json.dumps(item, ensure_ascii=False)[:40]}, not a "
                                    "non-empty string; write every token and tag as a string")
        if len(record["tokens"]) != len(record["tags"]):
            raise UserError(f"{where}: {len(record['tokens'])} tokens but {len(record['tags'])} tags; give exactly "
                            "one tag per token")
        if not record["tokens"]:
            raise UserError(f"{where}: a sentence without tokens; remove the line")
        tokens.append(record["tokens"])
        tags.append(record["tags"])
    return Tagged(tokens, tags)


def write_tagged(path: str | Path, tagged: Tagged) -> None:
    """Writes sentences as JSON lines (.jsonl / .json / .ndjson) or as CoNLL "token<TAB>tag" lines (any other name),
    atomically (a crash leaves the old file or none).

    Args:
        path: the file; its folder is made when missing.
        tagged: the sentences.

    Raises:
        UserError for an empty sentence, a CoNLL token or tag that is empty, holds whitespace or is -DOCSTART-
        (CoNLL cannot hold it: write JSON lines instead), or a path that cannot be written.
    """
    path = Path(path)
    json_lines = is_json_lines(path)
    for i, sentence in enumerate(tagged.tokens):
        if not sentence:
            raise UserError(f"cannot write {path}: sentence {i + 1} has no tokens")
    if json_lines:
        text = "".join(json.dumps({"tokens": a, "tags": b}, ensure_ascii=False) + "\n"
                       for a, b in zip(tagged.tokens, tagged.tags))
    else:
        for i, (sentence, sentence_tags) in enumerate(zip(tagged.tokens, tagged.tags)):
            for j, item in enumerate(sentence + sentence_tags):
                if not item or item == DOCSTART or any(c.isspace() for c in item):
                    kind = "token" if j < len(sentence) else "tag"
                    raise UserError(f"cannot write {path} as CoNLL: sentence {i + 1} has the {kind} {item!r}, which "
                                    "a CoNLL reader would split or skip; write a .jsonl file instead")
        text = "\n".join("".join(f"{a}\t{b}\n" for a, b in zip(sentence, sentence_tags))
                         for sentence, sentence_tags in zip(tagged.tokens, tagged.tags))
    try:
        atomic_write(path, text)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}; choose a file in a folder you can write "
                        "to") from None
