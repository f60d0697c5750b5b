"""Batches of encoded texts: right padding, reproducible and resumable epochs, length buckets, class weights,
evaluation batches and scoring a split in its own order."""
import numpy as np

from tfseq.data.batching import Encoded, balanced_weights, epoch_batches, eval_dataset, predict_split, train_dataset


def random_split(n: int, longest: int, seed: int = 0) -> Encoded:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, longest, n)
    return Encoded(rng.integers(1, 50, lengths.sum()).astype(np.int32), np.concatenate([[0], np.cumsum(lengths)]),
                   rng.integers(0, 2, n).astype(np.int32))


def test_batches_are_right_padded_reproducible_and_bucketed():
    data = random_split(1000, 200)
    lengths = data.lengths
    plain, steps = train_dataset(data, 32, seed=1, first_epoch=0, epochs=2, bucket=False)
    bucketed, steps_b = train_dataset(data, 32, seed=1, first_epoch=0, epochs=2, bucket=True)
    assert steps == steps_b == 32
    padding = {}
    for name, ds in (("plain", plain), ("bucketed", bucketed)):
        batches = list(ds)
        assert len(batches) == 2 * steps
        x = batches[0][0].numpy()
        nonzero = x != 0
        # Right padding: within a row, no real id after a 0.
        assert np.all(np.cumsum(~nonzero, axis=1)[nonzero] == 0)
        assert batches[0][1].shape[1] == 1
        padding[name] = sum(int(np.sum(b[0].numpy() == 0)) for b in batches)
    assert padding["bucketed"] < padding["plain"] / 5
    resumed, _ = train_dataset(data, 32, seed=1, first_epoch=1, epochs=2, bucket=True)
    first_resumed = next(iter(resumed))[0].numpy()
    np.testing.assert_array_equal(first_resumed, list(bucketed)[steps][0].numpy())
    all_rows = sorted(np.concatenate(epoch_batches(lengths, 32, 1, 0, True)).tolist())
    assert all_rows == list(range(1000))


def test_equal_length_batches_hold_no_padding():
    data = random_split(300, 9)
    ds = eval_dataset(data, 16, pad_multiple=16, exact_lengths=True)
    order = np.argsort(data.lengths, kind="stable")  # shortest first
    seen = []
    for x, y in ds:
        x = x.numpy()
        assert (x != 0).all() and x.shape[0] <= 16  # one length per batch, nothing padded
        seen.append(x)
    assert sum(len(x) for x in seen) == 300
    rows = [data.ids[data.splits[i]:data.splits[i + 1]].tolist() for i in order]
    assert [r for x in seen for r in x.tolist()] == rows




class LengthModel:
    """Stands in for a classifier: its output for a text is the text's number of non-padding ids and its first id."""

    def predict(self, ds, verbose=0):
        rows = [np.stack([(x != 0).sum(1), x[:, 0]], 1) for x in (b.numpy() for b in ds)]
        return np.concatenate(rows).astype(np.float32)


def test_predict_split_answers_in_the_split_order():
    data = random_split(100, 30, seed=2)
    for exact in (False, True):
        out = predict_split(LengthModel(), data, 8, pad_multiple=16, exact_lengths=exact)
        assert out[:, 0].tolist() == data.lengths.tolist()
        assert out[:, 1].tolist() == data.ids[data.splits[:-1]].tolist()


def test_class_weights_are_balanced_and_reach_the_batches():
    labels = np.array([0, 0, 0, 1, 2, 2], np.int32)
    np.testing.assert_allclose(balanced_weights(labels, 4), [6 / 12, 6 / 4, 6 / 8, 0.0])
    data = Encoded(np.arange(1, 7, dtype=np.int32), np.arange(7), labels)
    ds, _ = train_dataset(data, 6, seed=0, first_epoch=0, epochs=1, bucket=False,
                          class_weights=balanced_weights(labels, 3))
    x, y, w = next(iter(ds))
    expected = {0: 6 / 9, 1: 6 / 3, 2: 6 / 6}
    np.testing.assert_allclose(w.numpy(), [expected[int(label)] for label in y.numpy()[:, 0]], rtol=1e-6)
