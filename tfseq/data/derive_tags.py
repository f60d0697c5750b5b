"""Tagging tasks derived from any raw text, so that the tag task has real data without a download.

- Punctuation restoration (`punctuation`): the words, lowercased and without punctuation, each tagged with the mark
  that followed it: O (none), COMMA, PERIOD, QUESTION, EXCLAMATION, COLON, SEMICOLON or DASH ("--", or an em, en or
  horizontal-bar dash, or a hyphen standing alone).
- Truecasing (`truecase`): sentences of lowercased words and punctuation marks, each tagged with its original case:
  lower (no capital, or no letter), Title (the first letter a capital, the rest small; "I" and "A" too), UPPER (two or
  more letters, all capitals) or mixed (McDonald, iPhone).

Choices (both tasks read words the same way):
- A word is a run of letters and digits, joined by an inner apostrophe ("don't"; a curly one becomes "'"), an inner
  hyphen ("well-known") or, between digits, a comma or a period ("1,000", "3.5"): one token each, kept whole. The
  text is NFC-normalised first, so an accent typed as a separate combining mark stays inside its word. Leading or
  trailing apostrophes ("'tis", "boys'") are quotes, not part of the word.
- When several marks stand between two words, the first that has a tag wins ("Masons,--no": COMMA; "?!": QUESTION).
  Quotes, brackets, ellipses ("...", "…"), slashes and other symbols have no tag and are passed over, so "alone!...
  The" is EXCLAMATION and "it... it" is O: an ellipsis is neither a sentence end nor a pause reliably enough to teach.
  A period after an abbreviation is a PERIOD too ("mr" is always followed by one: easy, and true to the text).
- Punctuation pieces: each paragraph (blank-line separated; a paragraph's end is a real boundary that a user's text
  has too) is one piece when it has at most `words_per_piece` words; a longer one is cut into pieces of between half
  of that and all of it, the lengths drawn from a fixed seed. The cuts deliberately ignore sentence ends: a cut placed
  after a sentence end would make "the last word of a piece" mean PERIOD, which a bidirectional model learns for free
  and the most-frequent-tag reference cannot; cut anywhere, the last word of a cut piece is tagged like any other.
- Truecase sentences end after ".", "?", "!" or an ellipsis (with the closing quotes and brackets that touch it)
  unless the next word starts with a small letter ("“Help!” cried Pencroft" is one sentence), or the period follows
  a common abbreviation (Mr. Mrs. Dr. St. Capt. ...) or a single letter (an initial, "U.S."); a paragraph break always
  ends one. This is rough on purpose: it decides only which word is sentence-initial (`initial_words`).
"""
from __future__ import annotations

import random
import re
import unicodedata
from pathlib import Path

from tfseq.data.tagged import Tagged
from tfseq.errors import UserError
from tfseq.files import decode_utf8

KINDS = ("punctuate", "truecase")
PUNCTUATION_TAGS = ("O", "COMMA", "PERIOD", "QUESTION", "EXCLAMATION", "COLON", "SEMICOLON", "DASH")
CASE_TAGS = ("lower", "Title", "UPPER", "mixed")
IMDB_SPLITS = ("train", "test")

_WORD = r"[^\W_]+(?:(?:['’]|-|(?<=\d)[.,](?=\d))[^\W_]+)*"
# A token is a word or one mark; runs of periods (an ellipsis) and of hyphens (a dash) are one mark.
_TOKEN = re.compile(rf"(?P<word>{_WORD})|(?P<mark>\.{{2,}}|-{{2,}}|\S)")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_MARK_TAGS = {",": "COMMA", ".": "PERIOD", "?": "QUESTION", "!": "EXCLAMATION", ":": "COLON", ";": "SEMICOLON",
              "-": "DASH", "—": "DASH", "–": "DASH", "―": "DASH"}
_CLOSERS = frozenset("\"'”’»)]}")
_ABBREVIATIONS = frozenset("mr mrs ms messrs dr prof st mt rev hon capt col gen lt sgt jr sr vs".split())


def punctuation(text: str, words_per_piece: int = 40) -> Tagged:
    """Derives punctuation restoration from a text (see the module notes for the rules).

    Args:
        text: any text; paragraphs are separated by blank lines.
        words_per_piece: the most words of one piece (at least 1).

    Returns:
        One sentence per piece: lowercased words, each tagged with one of PUNCTUATION_TAGS.
    """
    if words_per_piece < 1:
        raise UserError(f"words_per_piece = {words_per_piece} must be at least 1")
    rng = random.Random(0)
    tokens, tags = [], []
    for paragraph in _paragraphs(text):
        words, marks = _punctuated_words(paragraph)
        start = 0
        while len(words) - start > words_per_piece:
            end = start + rng.randint((words_per_piece + 1) // 2, words_per_piece)
            tokens.append(words[start:end])
            tags.append(marks[start:end])
            start = end
        if start < len(words):
            tokens.append(words[start:])
            tags.append(marks[start:])
    return Tagged(tokens, tags)


def _punctuated_words(paragraph: str) -> tuple[list[str], list[str]]:
    """A paragraph's normalised words and the tag of the first tagged mark after each."""
    words, tags, waiting = [], [], False
    for found in _TOKEN.finditer(paragraph):
        if found.lastgroup == "word":
            words.append(_normal(found.group()))
            tags.append("O")
            waiting = True
        elif waiting and (tag := _mark_tag(found.group())):
            tags[-1] = tag
            waiting = False
    return words, tags


def _mark_tag(mark: str) -> str | None:
    return "DASH" if mark.startswith("--") else _MARK_TAGS.get(mark)


def truecase(text: str) -> Tagged:
    """Derives truecasing from a text (see the module notes for the rules).

    Args:
        text: any text; paragraphs are separated by blank lines.

    Returns:
        One sentence per sentence of the text: lowercased words and marks, each tagged with one of CASE_TAGS.
    """
    tokens, tags = [], []
    for paragraph in _paragraphs(text):
        for sentence in _sentences(list(_TOKEN.finditer(paragraph))):
            tokens.append([_normal(f.group()) if f.lastgroup == "word" else f.group().lower() for f in sentence])
            tags.append([_case(f.group()) for f in sentence])
    return Tagged(tokens, tags)


def _sentences(found: list[re.Match]) -> list[list[re.Match]]:
    """Cuts a paragraph's tokens into sentences."""
    sentences, start, i = [], 0, 0
    while i < len(found):
        if not _is_end(found[i].group()):
            i += 1
            continue
        end = i + 1  # the sentence keeps the marks and closers that touch its end: "?!", ".”", "!)"
        while end < len(found) and found[end].start() == found[end - 1].end() and \
                (found[end].group() in _CLOSERS or _is_end(found[end].group())):
            end += 1
        if _ends_sentence(found, i, end):
            sentences.append(found[start:end])
            start = end
        i = end
    if start < len(found):
        sentences.append(found[start:])
    return sentences


def _is_end(mark: str) -> bool:
    return mark in ("?", "!", "…") or mark.startswith(".")


def _ends_sentence(found: list[re.Match], mark: int, after: int) -> bool:
    """Whether the end mark at `mark` (its closers run up to `after`) ends a sentence."""
    following = next((f.group() for f in found[after:] if f.lastgroup == "word"), None)
    if following is not None and following[0].islower():
        return False
    if found[mark].group() == "." and mark > 0 and found[mark - 1].lastgroup == "word" \
            and found[mark - 1].end() == found[mark].start():
        before = found[mark - 1].group()
        if before.lower() in _ABBREVIATIONS or (len(before) == 1 and before.isalpha()):
            return False
    return True


def _case(token: str) -> str:
    cased = [c for c in token if c.isupper() or c.islower()]
    if not any(c.isupper() for c in cased):
        return "lower"
    if cased[0].isupper() and not any(c.isupper() for c in cased[1:]):
        return "Title"
    return "UPPER" if all(c.isupper() for c in cased) else "mixed"


def initial_words(tokens: list[str]) -> list[bool]:
    """Marks a sentence's initial word: the first token with a letter, whose capital the sentence start predicts.

    Args:
        tokens: one sentence's tokens.

    Returns:
        True at that token, False elsewhere (all False when no token has a letter).
    """
    flags, seen = [], False
    for token in tokens:
        first = not seen and any(c.isalpha() for c in token)
        seen = seen or first
        flags.append(first)
    return flags


def _normal(word: str) -> str:
    return word.lower().replace("’", "'")


def _paragraphs(text: str) -> list[str]:
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return [p for p in _PARAGRAPH_BREAK.split(text) if p.strip()]


def derive(kind: str, texts: list[str], words_per_piece: int = 40) -> Tagged:
    """Derives a tagging task from documents, each on its own, the results concatenated in document order.

    Args:
        kind: "punctuate" or "truecase".
        texts: the documents.
        words_per_piece: punctuate: the most words of one piece (truecase reads whole sentences).

    Returns:
        The sentences (punctuate: pieces) of all documents.
    """
    _check_kind(kind)
    tokens, tags = [], []
    for text in texts:
        part = punctuation(text, words_per_piece) if kind == "punctuate" else truecase(text)
        tokens += part.tokens
        tags += part.tags
    return Tagged(tokens, tags)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UserError(f"unknown tagging task {kind!r}; choose one of {', '.join(KINDS)}")


def derive_source(kind: str, source: str, split: str = "", limit: int = 0, words_per_piece: int = 40,
                  start_marker: str = "", end_marker: str = "End of the Project Gutenberg") -> Tagged:
    """Reads a source's documents (`read_documents`) and derives a tagging task from them (`derive`).

    Args:
        kind: "punctuate" or "truecase".
        source, split, limit, start_marker, end_marker: as `read_documents` takes them.
        words_per_piece: punctuate: the most words of one piece.

    Returns:
        The tagged sentences. Raises UserError for a bad source or one without a word to tag.
    """
    _check_kind(kind)
    if words_per_piece < 1:  # before reading: the IMDb archive takes seconds
        raise UserError(f"words_per_piece = {words_per_piece} must be at least 1")
    tagged = derive(kind, read_documents(source, split, limit, start_marker, end_marker), words_per_piece)
    if not tagged.tokens:
        raise UserError(f"{source} holds no words to tag; give a source with text")
    return tagged


def read_documents(source: str, split: str = "", limit: int = 0, start_marker: str = "",
                   end_marker: str = "End of the Project Gutenberg") -> list[str]:
    """Reads the documents to derive tagging tasks from.

    Args:
        source: "book" (the embedded The Mysterious Island); a UTF-8 text file (one document; a Project Gutenberg
            header and licence are stripped); a folder of .txt files (searched recursively, each a document, in
            path order); or IMDb's aclImdb_v1.tar.gz / .tgz or an extracted aclImdb/ folder (each review a
            document, its "<br />" line breaks made paragraph breaks).
        split: IMDb: "train" (the 25,000 labelled training reviews; "" too) or "test" (the 25,000 test reviews).
            Other sources have no splits and are read whole, whatever the split.
        limit: > 0 keeps the first that many documents (a folder's files in path order; IMDb's reviews negative,
            then positive, by number); 0 = all. A text file is one document.
        start_marker: a text file: the book starts at the first occurrence of this (see `strip_gutenberg`).
        end_marker: a text file: the book ends before this, or before the "*** END OF" line.

    Returns:
        The documents. Raises UserError for a missing or unreadable source, text that is not UTF-8, an empty
        folder, or a split other than train or test.
    """
    if not source:
        raise UserError("no source given; give a text file, a folder of .txt files, the IMDb archive or an aclImdb/ "
                        "folder, or 'book' for the embedded book")
    if split not in ("",) + IMDB_SPLITS:
        raise UserError(f"split {split!r} is not one of {', '.join(IMDB_SPLITS)}")
    if limit < 0:
        raise UserError(f"limit = {limit} must be 0 (all documents) or more")
    if source == "book":
        from tfseq.data.gutenberg import EMBEDDED_BOOK  # imports TensorFlow: only text files need it

        path = EMBEDDED_BOOK
    else:
        path = Path(source)
        if not path.exists():
            raise UserError(f"source {source} does not exist; give a text file, a folder of .txt files, the IMDb "
                            "archive aclImdb_v1.tar.gz or an aclImdb/ folder, or 'book' for the embedded book")
    if is_imdb(str(path)):
        from tfseq.data.corpus import _BREAK
        from tfseq.data.imdb import read_source

        reviews = read_source(str(path))[0][split or "train"].texts
        return [_BREAK.sub("\n\n", review) for review in reviews[: limit or None]]
    if path.is_dir():
        from tfseq.data.sources import _txt_files

        files = _txt_files(path)[: limit or None]
        if not files:
            raise UserError(f"{path} holds no .txt files; put each document in it as a UTF-8 .txt file")
        return [_read(file) for file in files]
    from tfseq.data.gutenberg import strip_gutenberg

    return [strip_gutenberg(_read(path), start_marker, end_marker)]


def is_imdb(source: str) -> bool:
    """Whether a source is the IMDb archive (a .tar.gz / .tgz) or an extracted aclImdb/ folder."""
    from tfseq.data.imdb import is_imdb_source  # the classify task's test too: both tasks read the same sources

    return source != "book" and bool(source) and is_imdb_source(Path(source))


def _read(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from None
    return decode_utf8(raw, str(path))
