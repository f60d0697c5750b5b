"""Class lists of label strings: sorted, numbers in numeric order, and what counts as a number."""
import numpy as np

from tfseq.data.examples import class_ids, numeric_values


def test_class_ids_sort_names_and_numbers():
    ids, classes = class_ids(["b", "a", "c", "a"])
    assert classes == ["a", "b", "c"] and ids.tolist() == [1, 0, 2, 0]
    ids, classes = class_ids(["10", "2", "1.5", "2"])
    assert classes == ["1.5", "2", "10"] and ids.tolist() == [2, 1, 0, 1]
    assert class_ids(["x", "z"], ["z", "y"])[0].tolist() == [-1, 0]


def test_numeric_values_need_finite_numbers():
    np.testing.assert_array_equal(numeric_values(["1", "-2.5", "10"]), [1.0, -2.5, 10.0])
    for names in (["1", "nan"], ["1", "inf"], ["1", "one"], []):
        assert numeric_values(names) is None
