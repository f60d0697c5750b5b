"""Tag and chunk scores against values worked out by hand, including conlleval's corner cases."""
import json

import pytest

from tfseq.tag_scores import chunk_scores, chunks, format_report, is_chunk_tagset, tag_scores


@pytest.mark.parametrize("tags, expected", [
    # IOB2: a chunk right at the sentence's end is closed by the end
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
    # an I- after O starts a chunk (IOB1, or loose BIO as conlleval reads it)
    (["O", "I-PER", "I-PER", "O"], [("PER", 1, 3)]),
    (["I-PER"], [("PER", 0, 1)]),
    # IOB1: B- only where a chunk follows one of its own type
    (["I-NP", "I-NP", "B-NP", "I-NP", "O"], [("NP", 0, 2), ("NP", 2, 4)]),
    # a change of type ends a chunk and starts one, whatever the prefix
    (["B-PER", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 2)]),
    (["I-PER", "I-LOC", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 3)]),
    # B- always starts a chunk
    (["B-PER", "B-PER", "I-PER"], [("PER", 0, 1), ("PER", 1, 3)]),
    # IOBES: E- and S- end a chunk, B- and S- start one (conlleval would join B-X E-X B-X E-X into one)
    (["B-PER", "E-PER", "S-LOC", "B-PER", "I-PER", "E-PER", "S-PER", "S-PER", "O"],
     [("PER", 0, 2), ("LOC", 2, 3), ("PER", 3, 6), ("PER", 6, 7), ("PER", 7, 8)]),
    (["B-X", "E-X", "B-X", "E-X"], [("X", 0, 2), ("X", 2, 4)]),
    # IOE1: E- only where a chunk of its own type follows; I- after E- starts one
    (["I-NP", "E-NP", "I-NP", "O", "E-NP"], [("NP", 0, 2), ("NP", 2, 3), ("NP", 4, 5)]),
    # the type is all after the first hyphen
    (["B-B-X", "I-B-X"], [("B-X", 0, 2)]),
    (["O", "O"], []),
    ([], []),
])
def test_chunks(tags, expected):
    assert chunks(tags) == expected


@pytest.mark.parametrize("bad", [".", "PER", "X-PER", "B", "b-PER"])
def test_chunks_refuses_other_tags(bad):
    # "." is not special (conlleval's old chunk-free tag): it is not a chunk tag
    with pytest.raises(ValueError, match=f"tag {bad!r} at position 1 is not a chunk tag"):
        chunks(["O", bad])


@pytest.mark.parametrize("tags, expected", [
    ({"O", "B-PER", "I-PER"}, True),
    ({"B-X", "I-X", "E-X", "S-Y"}, True),
    ({"O"}, False),
    (set(), False),
    ({"O", "COMMA", "PERIOD"}, False),
    ({"lower", "Title", "UPPER", "mixed"}, False),
    ({"O", "B-PER", "PERIOD"}, False),
    ({"O", "IN", "NN"}, False),
])
def test_is_chunk_tagset(tags, expected):
    assert is_chunk_tagset(tags) is expected


def test_chunk_scores_count_only_exact_chunks():
    true = [["B-PER", "I-PER", "O", "B-LOC"]]
    # PER: the right type but its end is one token short; LOC: the right span but the wrong type
    pred = [["B-PER", "O", "O", "B-ORG"]]
    scores = chunk_scores(true, pred)
    assert (scores["true_chunks"], scores["pred_chunks"], scores["correct"]) == (2, 2, 0)
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)
    assert scores["accuracy"] == 2 / 4
    assert list(scores["per_type"]) == ["LOC", "ORG", "PER"]
    assert scores["per_type"]["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "true_chunks": 0,
                                         "pred_chunks": 1, "correct": 0}


def test_chunk_scores_without_chunks_are_zero_not_nan():
    scores = chunk_scores([["O", "O"], ["O"]], [["O", "O"], ["O"]])
    assert scores == {"tokens": 3, "accuracy": 1.0, "true_chunks": 0, "pred_chunks": 0, "correct": 0,
                      "precision": 0.0, "recall": 0.0, "f1": 0.0, "per_type": {}}
    # true chunks but none predicted: recall 0, and precision 0 (no predictions) rather than undefined
    scores = chunk_scores([["B-PER"]], [["O"]])
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)
    assert chunk_scores([], [])["accuracy"] == 0.0


def test_chunk_scores_iobes():
    true = [["S-PER", "O", "B-LOC", "I-LOC", "E-LOC"]]
    pred = [["S-PER", "O", "B-LOC", "E-LOC", "S-LOC"]]  # LOC cut in two: neither half counts
    scores = chunk_scores(true, pred)
    assert (scores["true_chunks"], scores["pred_chunks"], scores["correct"]) == (2, 3, 1)
    assert scores["per_type"]["LOC"]["pred_chunks"] == 2 and scores["per_type"]["LOC"]["correct"] == 0
    assert scores["per_type"]["PER"]["f1"] == 1.0


def test_chunk_scores_as_conlleval_prints_them():
    true = [
        ["B-PER", "I-PER", "O", "B-LOC", "O", "O"],
        ["O", "B-ORG", "I-ORG", "I-ORG"],
        ["B-LOC", "O", "B-PER", "O", "B-MISC", "I-MISC", "O"],
    ]
    pred = [
        ["B-PER", "I-PER", "O", "B-ORG", "O", "O"],  # LOC called ORG
        ["O", "B-ORG", "I-ORG", "O"],  # ORG one token short
        ["B-LOC", "O", "I-PER", "O", "B-MISC", "I-MISC", "B-PER"],  # I-PER after O starts the right chunk; an extra PER
    ]
    scores = chunk_scores(true, pred)
    # true chunks: PER LOC | ORG | LOC PER MISC = 6; found: PER ORG | ORG | LOC PER MISC PER = 7;
    # correct: PER | - | LOC PER MISC = 4. Tags right: 5 + 3 + 5 of 17 tokens.
    # conlleval prints:
    #   processed 17 tokens with 6 phrases; found: 7 phrases; correct: 4.
    #   accuracy:  76.47%; precision:  57.14%; recall:  66.67%; FB1:  61.54
    #                 LOC: precision: 100.00%; recall:  50.00%; FB1:  66.67  1
    #                MISC: precision: 100.00%; recall: 100.00%; FB1: 100.00  1
    #                 ORG: precision:   0.00%; recall:   0.00%; FB1:   0.00  2
    #                 PER: precision:  66.67%; recall: 100.00%; FB1:  80.00  3
    assert (scores["tokens"], scores["true_chunks"], scores["pred_chunks"], scores["correct"]) == (17, 6, 7, 4)

    def printed(s):
        return tuple(round(100 * s[key], 2) for key in ("precision", "recall", "f1"))

    assert round(100 * scores["accuracy"], 2) == 76.47
    assert printed(scores) == (57.14, 66.67, 61.54)
    assert scores["f1"] == pytest.approx(8 / 13)  # 2 * 4 / (7 + 6)
    per_type = {kind: printed(s) + (s["pred_chunks"],) for kind, s in scores["per_type"].items()}
    assert per_type == {"LOC": (100.0, 50.0, 66.67, 1), "MISC": (100.0, 100.0, 100.0, 1),
                        "ORG": (0.0, 0.0, 0.0, 2), "PER": (66.67, 100.0, 80.0, 3)}


# Punctuation restoration, three sentences of 5, 2 and 4 words. (true, predicted) per token:
# (O,O) (O,COMMA) (COMMA,COMMA) (O,O) (PERIOD,O) | (O,O) (PERIOD,PERIOD) | (COMMA,O) (O,O) (O,O) (PERIOD,PERIOD)
TAGS = ["O", "COMMA", "PERIOD"]
TRUE = [["O", "O", "COMMA", "O", "PERIOD"], ["O", "PERIOD"], ["COMMA", "O", "O", "PERIOD"]]
PRED = [["O", "COMMA", "COMMA", "O", "O"], ["O", "PERIOD"], ["O", "O", "O", "PERIOD"]]


def test_tag_scores_by_hand():
    scores = tag_scores(TRUE, PRED, TAGS)
    assert scores["confusion"] == [[5, 1, 0], [1, 1, 0], [1, 0, 2]]
    assert scores["accuracy"] == 8 / 11 and scores["tokens_scored"] == 11
    # O: precision 5/7, recall 5/6, F1 2*5/(7+6); COMMA: 1/2, 1/2, 1/2; PERIOD: 2/2, 2/3, 2*2/(2+3)
    expected = {"O": (5 / 7, 5 / 6, 10 / 13, 6), "COMMA": (0.5, 0.5, 0.5, 2), "PERIOD": (1.0, 2 / 3, 4 / 5, 3)}
    assert list(scores["per_tag"]) == TAGS
    for tag, (precision, recall, f1, support) in expected.items():
        got = scores["per_tag"][tag]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((precision, recall, f1))
        assert got["support"] == support
    # non-O: 5 true, 4 predicted, 3 right (1 COMMA, 2 PERIOD)
    assert scores["precision_non_O"] == pytest.approx(3 / 4)
    assert scores["recall_non_O"] == pytest.approx(3 / 5)
    assert scores["f1_non_O"] == pytest.approx(2 / 3)  # 2 * 3 / (4 + 5)
    assert scores["macro_f1_non_O"] == pytest.approx((1 / 2 + 4 / 5) / 2)
    assert "chunks" not in scores and "loss" not in scores and "auc" not in scores
    assert json.loads(json.dumps(scores)) == scores


def test_tag_scores_mask_leaves_tokens_out():
    mask = [[i > 0 for i in range(len(sentence))] for sentence in TRUE]  # not the first word of a sentence
    scores = tag_scores(TRUE, PRED, TAGS, mask=mask)
    # left out: (O,O) (O,O) (COMMA,O); kept: 8 tokens, 6 right
    assert scores["tokens_scored"] == 8 and scores["accuracy"] == 6 / 8
    assert scores["confusion"] == [[3, 1, 0], [0, 1, 0], [1, 0, 2]]
    # non-O: 4 true (1 COMMA, 3 PERIOD), 4 predicted, 3 right
    assert (scores["precision_non_O"], scores["recall_non_O"], scores["f1_non_O"]) == pytest.approx((0.75,) * 3)


def test_tag_scores_other_ignored_tags():
    true, pred = [["lower", "Title", "lower"], ["UPPER"]], [["lower", "lower", "lower"], ["UPPER"]]
    tags = ["lower", "Title", "UPPER"]
    scores = tag_scores(true, pred, tags, ignore=("lower",))
    # not lower: 2 true (Title, UPPER), 1 predicted (UPPER), 1 right; Title's F1 0 and UPPER's 1 in the macro
    assert (scores["precision_non_lower"], scores["recall_non_lower"]) == (1.0, 0.5)
    assert scores["macro_f1_non_lower"] == 0.5
    # the default ignores O, which these tags lack: every token counts, and the micro scores equal the accuracy
    scores = tag_scores(true, pred, tags)
    assert scores["f1_non_O"] == scores["accuracy"] == 3 / 4
    assert tag_scores(true, pred, tags, ignore=())["f1_all"] == 3 / 4
    # a tag that never occurs is left out of the macro average
    assert tag_scores(true, pred, tags + ["mixed"], ignore=("lower",))["macro_f1_non_lower"] == 0.5


def test_tag_scores_adds_chunk_scores_for_chunk_tags():
    true = [["B-PER", "I-PER", "O"], ["O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O"], ["O", "I-LOC"]]
    scores = tag_scores(true, pred, ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    assert scores["chunks"] == chunk_scores(true, pred)
    assert scores["chunks"]["f1"] == 1.0  # I-LOC after O is the same chunk as B-LOC
    assert scores["accuracy"] == 4 / 5
    assert scores["f1_non_O"] == pytest.approx(2 / 3)  # 2 right of 3 true and 3 predicted tags


def test_format_report():
    report = format_report(tag_scores(TRUE, PRED, TAGS))
    lines = report.splitlines()
    assert lines[0].split() == ["tag", "precision", "recall", "F1", "support"]
    assert lines[3].split() == ["PERIOD", "100.00%", "66.67%", "80.00%", "3"]
    assert "accuracy 72.73% of 11 tokens" in report
    assert "non_O (micro): precision 75.00%, recall 60.00%, F1 66.67%; macro-F1 65.00%" in report
    assert "chunks" not in report

    true = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"]]
    report = format_report(tag_scores(true, pred, ["O", "B-PER", "I-PER", "B-LOC", "B-ORG"]))
    assert "chunks (conlleval): 2 true, 2 found, 1 correct; precision 50.00%, recall 50.00%, F1 50.00%" in report
    assert "  PER: precision 100.00%; recall 100.00%; F1 100.00%  1 found" in report


@pytest.mark.parametrize("true, pred, message", [
    ([["O"], ["O"]], [["O"]], "2 sentences of true tags but 1 of predicted"),
    ([["O"], ["O", "O"]], [["O"], ["O"]], "sentence 1 has 2 true tags but 1 predicted"),
])
def test_different_lengths_are_refused(true, pred, message):
    with pytest.raises(ValueError, match=message):
        chunk_scores(true, pred)
    with pytest.raises(ValueError, match=message):
        tag_scores(true, pred, ["O", "B-X"])


def test_tag_scores_refuses_bad_input():
    with pytest.raises(ValueError, match=r"sentence 2 has 4 true tags but 3 mask"):
        tag_scores(TRUE, PRED, TAGS, mask=[[True] * 5, [True] * 2, [True] * 3])
    with pytest.raises(ValueError, match=r"true tag 'QUESTION' \(sentence 1\) is not among the 3 tags given"):
        tag_scores([["O"], ["QUESTION"]], [["O"], ["O"]], TAGS)
    with pytest.raises(ValueError, match="predicted tag 'B-X'"):
        tag_scores([["O"]], [["B-X"]], TAGS)
    with pytest.raises(ValueError, match="no token to score"):
        tag_scores(TRUE, PRED, TAGS, mask=[[False] * len(sentence) for sentence in TRUE])
    with pytest.raises(ValueError, match="no token to score"):
        tag_scores([[], []], [[], []], TAGS)
    with pytest.raises(ValueError, match="ignore must be a tuple or list of tag names, got the string 'O'"):
        tag_scores(TRUE, PRED, TAGS, ignore="O")
    with pytest.raises(ValueError, match="class names must be distinct"):
        tag_scores(TRUE, PRED, TAGS + ["O"])
