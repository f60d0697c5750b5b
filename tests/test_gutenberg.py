import numpy as np
import pytest

from tfseq.data import gutenberg
from tfseq.data.gutenberg import EMBEDDED_BOOK, strip_gutenberg
from tfseq.tasks.lm import LMTask
from tfseq.data.text import read_text
from tfseq.errors import UserError


def test_embedded_book_matches_the_textbook_slice():
    raw = EMBEDDED_BOOK.read_text(encoding="utf-8-sig")  # universal newlines, as the textbook's open()
    textbook = raw[raw.find("THE MYSTERIOUS ISLAND"):raw.find("End of the Project Gutenberg")]
    ours = strip_gutenberg(read_text(EMBEDDED_BOOK), "THE MYSTERIOUS ISLAND", "End of the Project Gutenberg")
    assert ours == textbook
    assert 1_000_000 < len(ours) < 1_200_000 and len(set(ours)) == 80


def test_generic_markers_strip_header_and_licence():
    text = "Header\nlicence\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\nBody line.\nMore.\n" \
           "*** END OF THE PROJECT GUTENBERG EBOOK X ***\nLicence"
    assert strip_gutenberg(text) == "Body line.\nMore.\n"
    assert strip_gutenberg(text, start_marker="not there") == "Body line.\nMore.\n"
    assert strip_gutenberg("no markers at all") == "no markers at all"
    assert strip_gutenberg(text, end_marker="More.") == "Body line.\n"


def char_task(path, **data):
    from tfseq.config import load_config

    return LMTask(load_config("charlm", "charlm_tiny", [f"data.path={path}"] + [f"data.{k}={v}" for k, v in
                                                                              data.items()]))


def test_corpus_split_is_contiguous_with_the_last_tenth_held_out(small_book):
    task = char_task(small_book)
    text = strip_gutenberg(read_text(small_book), "THE MYSTERIOUS ISLAND", "End of the Project Gutenberg")
    assert task.vocab.decode(np.concatenate([task.train_ids, task.val_ids])) == text
    assert len(task.train_ids) == int(len(text) * 0.9)
    assert text.startswith("THE MYSTERIOUS ISLAND") and "licence" not in text


def test_windows_are_shifted_by_one_and_reproducible_per_epoch(small_book):
    ids = char_task(small_book).train_ids
    ds, steps = gutenberg.train_dataset(ids, seq_len=20, batch_size=8, seed=3, first_epoch=0, epochs=3)
    batches = [(x.numpy(), y.numpy()) for x, y in ds]
    assert len(batches) == 3 * steps and steps == (len(ids) - 21) // 20 // 8
    x, y = batches[0]
    assert x.shape == y.shape == (8, 20) and x.dtype == np.int32
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    # Every window is a real piece of the text.
    joined = ids.tobytes()
    assert all(np.concatenate([row_x, row_y[-1:]]).tobytes() in joined for row_x, row_y in zip(x, y))
    # A resumed run (first_epoch = 2) sees exactly the batches of epoch 2; epochs differ from each other.
    resumed, _ = gutenberg.train_dataset(ids, seq_len=20, batch_size=8, seed=3, first_epoch=2, epochs=3)
    for (rx, ry), (ox, oy) in zip(resumed, batches[2 * steps:]):
        np.testing.assert_array_equal(rx.numpy(), ox)
    assert not np.array_equal(batches[0][0], batches[steps][0])


def test_too_short_texts_and_limits_are_refused(tmp_path, small_book):
    short = tmp_path / "short.txt"
    short.write_text("tiny text " * 5)
    with pytest.raises(UserError, match="short.txt: the held-out text holds 5 chars, too few for data.seq_len = 40"):
        char_task(short, seq_len=40)
    ids = np.arange(500, dtype=np.int32) % 7
    with pytest.raises(UserError, match="fewer than one batch of 64 windows of 40"):
        gutenberg.train_dataset(ids, 40, 64, 1, 0, 1)
    with pytest.raises(UserError, match="train.steps_per_epoch = 99 is more than one pass"):
        gutenberg.steps_per_epoch(500, 10, 4, limit=99)


def test_eval_windows_cover_the_held_out_text_in_order():
    ids = np.arange(95, dtype=np.int32)
    batches = list(gutenberg.eval_dataset(ids, seq_len=10, batch_size=4))
    x = np.concatenate([b[0].numpy() for b in batches])
    y = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_array_equal(x.ravel(), np.arange(90))
    np.testing.assert_array_equal(y.ravel(), np.arange(1, 91))
