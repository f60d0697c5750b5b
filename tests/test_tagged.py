"""Tagged sentences and their files: CoNLL columns and JSON lines, read, written, and refused with a clear message."""
import json
import re

import pytest

from tfseq.data.tagged import Tagged, read_tagged, write_tagged
from tfseq.errors import UserError

SENTENCES = Tagged([["EU", "rejects", "German", "call"], ["Peter", "Blackburn"], ["BRUSSELS"]],
                   [["B-ORG", "O", "B-MISC", "O"], ["B-PER", "I-PER"], ["B-LOC"]])


def test_tagged_counts_takes_and_orders_tags_by_frequency_then_name():
    assert len(SENTENCES) == 3 and SENTENCES.token_count() == 7
    assert SENTENCES.tag_counts() == {"O": 2, "B-LOC": 1, "B-MISC": 1, "B-ORG": 1, "B-PER": 1, "I-PER": 1}
    assert SENTENCES.tag_set() == ["O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-PER"]
    assert SENTENCES.take([2, 0]) == Tagged([SENTENCES.tokens[2], SENTENCES.tokens[0]],
                                            [SENTENCES.tags[2], SENTENCES.tags[0]])
    with pytest.raises(ValueError):
        Tagged([["a", "b"]], [["O"]])


def test_conll_with_docstart_crlf_bom_spaces_and_no_trailing_blank_line(tmp_path):
    path = tmp_path / "train.conll"
    lines = ["-DOCSTART- -X- -X- O", "", "EU NNP B-NP B-ORG", "rejects\tVBZ\tB-VP\tO", "  German JJ B-NP B-MISC  ",
             "call NN I-NP O", "", "", "Peter NNP B-NP B-PER", "Blackburn NNP I-NP I-PER",
             "-DOCSTART- -X- -X- O", "BRUSSELS NNP B-NP B-LOC"]
    path.write_bytes("\ufeff".encode() + "\r\n".join(lines).encode())  # -DOCSTART- also ends "Peter Blackburn"
    assert read_tagged(path) == SENTENCES
    pos = read_tagged(path, token_column=-4, tag_column=1)
    assert pos.tokens == SENTENCES.tokens and pos.tags == [["NNP", "VBZ", "JJ", "NN"], ["NNP", "NNP"], ["NNP"]]


def test_json_lines_skip_blank_lines(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('\n{"tokens": ["a", "b"], "tags": ["X", "Y"], "id": 7}\n  \n{"tokens": ["c"], "tags": ["Z"]}',
                    encoding="utf-8-sig")
    assert read_tagged(path) == Tagged([["a", "b"], ["c"]], [["X", "Y"], ["Z"]])


@pytest.mark.parametrize("name", ["out.conll", "out.txt", "out.jsonl", "out.json"])
def test_write_then_read_is_equal(tmp_path, name):
    tagged = Tagged(SENTENCES.tokens + [["naïve", "😀", "don't", "\u2028x"]],
                    SENTENCES.tags + [["a", "b", "c", "d"]])
    if not name.endswith(".json") and not name.endswith(".jsonl"):
        tagged = tagged.take(range(3))  # a token with U+2028 is whitespace: CoNLL cannot hold it
    path = tmp_path / "deep" / name
    write_tagged(path, tagged)
    assert read_tagged(path) == tagged


def test_conll_is_token_tab_tag_with_a_blank_line_between_sentences(tmp_path):
    write_tagged(tmp_path / "x.conll", SENTENCES.take([1, 2]))
    assert (tmp_path / "x.conll").read_text() == "Peter\tB-PER\nBlackburn\tI-PER\n\nBRUSSELS\tB-LOC\n"
    write_tagged(tmp_path / "x.jsonl", SENTENCES.take([2]))
    assert json.loads((tmp_path / "x.jsonl").read_text()) == {"tokens": ["BRUSSELS"], "tags": ["B-LOC"]}


@pytest.mark.parametrize("name, content, message", [
    ("a.conll", "EU B-ORG\nrejects\n", "a.conll:2: 1 column(s) ('rejects'), but data.token_column = 0 and "
     "data.tag_column = -1 need 2 distinct columns; separate the token and its tag by a tab or a space"),
    ("a.conll", "", "a.conll holds no sentence; a tagged file needs one token and its tag per line"),
    ("a.conll", "\n\n-DOCSTART- O\n\n", "a.conll holds no sentence"),
    ("a.jsonl", "\n\n", "a.jsonl holds no sentence; a tagged file needs one object per line"),
    ("a.jsonl", '{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["a"],\n', "a.jsonl:2: not JSON (Expecting property "
     'name enclosed in double quotes); each line must be one object such as {"tokens": ["The", "cat"], "tags": '
     '["O", "O"]}'),
    ("a.json", '[{"tokens": ["a"], "tags": ["O"]}]', "a.json:1: a JSON list, not an object (a .json file is read as "
     "JSON lines, not as one array)"),
    ("a.jsonl", '{"tokens": ["a"]}', 'a.jsonl:1: "tags" is missing, not a list'),
    ("a.jsonl", '{"tags": ["O"]}', 'a.jsonl:1: "tokens" is missing, not a list'),
    ("a.jsonl", '{"tokens": "a b", "tags": ["O"]}', 'a.jsonl:1: "tokens" is a str, not a list'),
    ("a.jsonl", '{"tokens": ["a", "b"], "tags": ["O"]}', "a.jsonl:1: 2 tokens but 1 tags; give exactly one tag per "
     "token"),
    ("a.jsonl", '{"tokens": ["a", 5], "tags": ["O", "O"]}', "a.jsonl:1: tokens[1] is 5, not a non-empty string"),
    ("a.jsonl", '{"tokens": ["a"], "tags": [null]}', "a.jsonl:1: tags[0] is null, not a non-empty string"),
    ("a.jsonl", '{"tokens": [], "tags": []}', "a.jsonl:1: a sentence without tokens; remove the line"),
])
def test_read_errors_name_the_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=re.escape(str(tmp_path / message))):
        read_tagged(path)


def test_read_errors_for_columns_paths_and_encodings(tmp_path):
    path = tmp_path / "a.conll"
    path.write_text("EU NNP B-ORG\n", encoding="utf-8")
    with pytest.raises(UserError, match=re.escape("a.conll:1: 3 column(s) ('EU NNP B-ORG'), but data.token_column "
                                                  "= 0 and data.tag_column = 3 need 4 distinct columns")):
        read_tagged(path, tag_column=3)
    with pytest.raises(UserError, match="data.token_column and data.tag_column are both 1"):
        read_tagged(path, token_column=1, tag_column=1)
    with pytest.raises(UserError, match="tagged file .*missing.conll does not exist; give a CoNLL file"):
        read_tagged(tmp_path / "missing.conll")
    with pytest.raises(UserError, match="is a folder; give the path of a CoNLL or .jsonl file"):
        read_tagged(tmp_path)
    path.write_bytes("EU B-ORG\n\ncaf\xe9 O\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"a.conll is not UTF-8: byte 0xe9 at offset 13 \(line 3\)"):
        read_tagged(path)


def test_write_refuses_what_conll_cannot_hold_and_unwritable_paths(tmp_path):
    for tokens, shown in [(["New York"], "'New York'"), ([""], "''"), (["-DOCSTART-"], "'-DOCSTART-'")]:
        with pytest.raises(UserError, match=f"cannot write .*x.conll as CoNLL: sentence 1 has the token {shown}, "
                           "which a CoNLL reader would split or skip; write a .jsonl file instead"):
            write_tagged(tmp_path / "x.conll", Tagged([tokens], [["O"]]))
    with pytest.raises(UserError, match="sentence 1 has the tag 'B LOC'"):
        write_tagged(tmp_path / "x.conll", Tagged([["Paris"]], [["B LOC"]]))
    write_tagged(tmp_path / "x.jsonl", Tagged([["New York"]], [["B LOC"]]))  # JSON lines hold any string
    with pytest.raises(UserError, match="cannot write .*x.jsonl: sentence 2 has no tokens"):
        write_tagged(tmp_path / "x.jsonl", Tagged([["a"], []], [["O"], []]))
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot write .*file/x.conll: .*; choose a file in a folder you can write to"):
        write_tagged(tmp_path / "file" / "x.conll", SENTENCES)
    assert not (tmp_path / "x.conll").exists()
