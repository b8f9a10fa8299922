"""Beam search drops finished inputs from the batch between its loops (``compact``): the
outputs and scores are those of the search that keeps every input to the end, the later
steps run on fewer rows, for a growing cache (Transformer), a state that does not grow
(RNN with attention), a traced graph with a dynamic batch (the export), and a batch
whose inputs all finish before the first boundary."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seqtasks.beam_search import stage_limits
from seqtasks.decoding import beam_search
from seqtasks.models.seq2seq import RNNAttentionSeq2Seq, TransformerSeq2Seq
from seqtasks.text import END_ID

V, L, K = 40, 24, 3


def _model(kind, end_bias):
    keras.utils.set_random_seed(3)
    if kind == "transformer":
        model = TransformerSeq2Seq(V, V, L, hidden_dim=16, intermediate_dim=32, num_heads=2,
                                   num_layers=2, dropout=0.0)  # fmt: skip
        dense = model.decoder.output_dense
    else:
        model = RNNAttentionSeq2Seq(V, V, hidden_dim=8, embedding_dim=8)
        dense = None
    model({"encoder_token_ids": np.ones((1, 5), "int32"),
           "decoder_token_ids": np.ones((1, 5), "int32")})  # fmt: skip
    if dense is None:
        dense = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dense)
                 and layer.units == V][-1]  # fmt: skip
    bias = dense.bias.numpy()
    bias[END_ID] += end_bias  # outputs end at many lengths
    dense.bias.assign(bias)
    return model


def _sources(n=8):
    rng = np.random.default_rng(1)
    sources = rng.integers(4, V, size=(n, 9)).astype("int32")
    sources[1, 4:] = 0  # right padding
    sources[-1, 2:] = 0
    return sources


def _counting(model, monkeypatch):
    """Record the number of hypothesis rows of every decoding step (eager loops)."""
    rows, step = [], model.decode_step

    def counted(token_ids, cache, index):
        rows.append(int(token_ids.shape[0]))
        return step(token_ids, cache, index)

    monkeypatch.setattr(model, "decode_step", counted)
    return rows


def test_stage_limits():
    class Grows:
        cache_grows = True

    assert stage_limits(Grows(), 64, 16, False) == [(None, 17), (32, 33), (64, 64)]
    assert stage_limits(Grows(), 64, 16, True) == [(None, 17), (32, 33), (64, 64)]
    assert stage_limits(object(), 64, 16, True) == [(None, 17), (None, 33), (None, 64)]
    assert stage_limits(object(), 64, 16, False) == [(None, 64)]
    assert stage_limits(object(), 64, 0, True) == [(None, 64)]
    # Stops every `compact_every` positions between the cache's sizes; the cache still
    # grows only when a loop would write past it.
    assert stage_limits(Grows(), 64, 16, True, compact_every=8) == [
        (None, 9), (None, 17), (32, 25), (None, 33), (64, 41), (None, 49), (None, 57),
        (None, 64)]  # fmt: skip
    assert stage_limits(Grows(), 64, 16, False, compact_every=8) == [
        (None, 17), (32, 33), (64, 64)]  # fmt: skip
    assert stage_limits(object(), 20, 16, True, compact_every=6) == [
        (None, 7), (None, 13), (None, 17), (None, 20)]  # fmt: skip
    assert stage_limits(Grows(), 64, 0, True, compact_every=32) == [(None, 33), (None, 64)]
    # Stops at least an eighth of the cache size apart: a long buffer traces few loops.
    long = stage_limits(Grows(), 1024, 16, True, compact_every=8)
    assert len(long) == 24 and long[-1] == (None, 1024)
    assert [stop for _, stop in long[-5:]] == [513, 641, 769, 897, 1024]


@pytest.mark.parametrize("kind", ["transformer", "rnn"])
def test_dropping_finished_inputs_keeps_the_answers_and_runs_later_steps_on_fewer_rows(
    kind, monkeypatch
):
    model = _model(kind, 1.0 if kind == "transformer" else 0.0)
    sources = _sources()
    kept = beam_search(model, sources, L, beam_size=K, cache_chunk=4, compact=False)
    rows = _counting(model, monkeypatch)
    dropped = beam_search(model, sources, L, beam_size=K, cache_chunk=4)
    np.testing.assert_array_equal(np.asarray(dropped[0]), np.asarray(kept[0]))
    np.testing.assert_allclose(np.asarray(dropped[1]), np.asarray(kept[1]), atol=1e-5)
    lengths = (np.asarray(kept[0]) > 0).sum(axis=1)
    assert lengths.min() <= 5 and lengths.max() > 9, lengths  # ends on both sides of 4 and 8
    # Every step before the first boundary (index 5) runs the whole beam; after it, fewer.
    assert rows[:4] == [len(sources) * K] * 4
    assert rows[-1] < len(sources) * K and all(r % K == 0 for r in rows)
    assert sorted(rows, reverse=True) == rows


@pytest.mark.parametrize("kind", ["transformer", "rnn"])
def test_compacting_every_two_positions_keeps_the_answers(kind, monkeypatch):
    model = _model(kind, 1.0 if kind == "transformer" else 0.0)
    sources = _sources()
    kept = beam_search(model, sources, L, beam_size=K, cache_chunk=4, compact=False)
    rows = _counting(model, monkeypatch)
    often = beam_search(model, sources, L, beam_size=K, cache_chunk=4, compact_every=2)
    np.testing.assert_array_equal(np.asarray(often[0]), np.asarray(kept[0]))
    np.testing.assert_allclose(np.asarray(often[1]), np.asarray(kept[1]), atol=1e-5)
    # The first stop is at index 3 (after two steps); stopping more often never decodes
    # more rows than stopping only where the cache grows, and here decodes fewer.
    assert rows[:2] == [len(sources) * K] * 2
    assert sorted(rows, reverse=True) == rows and all(r % K == 0 for r in rows)
    rows_often = list(rows)
    rows.clear()
    beam_search(model, sources, L, beam_size=K, cache_chunk=4, compact_every=0)
    assert len(rows_often) == len(rows)  # the same number of steps
    assert all(a <= b for a, b in zip(rows_often, rows)) and sum(rows_often) < sum(rows)


def test_in_a_traced_graph_with_a_dynamic_batch():
    model = _model("transformer", 1.0)
    sources = _sources()

    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32)])
    def serve(ids):
        return beam_search(model, ids, L, beam_size=K, cache_chunk=4)

    for n in (8, 3):
        traced = serve(tf.constant(sources[:n]))
        kept = beam_search(model, sources[:n], L, beam_size=K, cache_chunk=4, compact=False)
        np.testing.assert_array_equal(np.asarray(traced[0]), np.asarray(kept[0]))
        np.testing.assert_allclose(np.asarray(traced[1]), np.asarray(kept[1]), atol=1e-5)


def test_a_batch_that_finishes_before_the_first_boundary(monkeypatch):
    model = _model("transformer", 12.0)  # [END] first, for every input
    sources = _sources(4)
    kept = beam_search(model, sources, L, beam_size=K, cache_chunk=4, compact=False)
    rows = _counting(model, monkeypatch)
    dropped = beam_search(model, sources, L, beam_size=K, cache_chunk=4)
    assert (np.asarray(kept[0])[:, 1] == END_ID).all()
    np.testing.assert_array_equal(np.asarray(dropped[0]), np.asarray(kept[0]))
    np.testing.assert_allclose(np.asarray(dropped[1]), np.asarray(kept[1]), atol=1e-6)
    assert rows == [4 * K]  # one step, then every loop after it is empty
