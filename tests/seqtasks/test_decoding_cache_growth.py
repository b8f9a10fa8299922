"""Beam search's growing self-attention cache (``cache_chunk``): the cache starts small and
doubles when full, and the outputs are those of the full-length cache from the start,
for the Transformer seq2seq model (eager and in a traced TensorFlow graph with a dynamic
batch, as the export runs it) and the Transformer language model with a prompt."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from seqtasks.decoding import beam_search, cache_stages
from seqtasks.models.language_models import RNNLanguageModel, TransformerLanguageModel
from seqtasks.models.seq2seq import RNNAttentionSeq2Seq, TransformerSeq2Seq
from seqtasks.text import END_ID, START_ID

V, L = 40, 24


class Grows:
    cache_grows = True


def test_cache_stages_double_from_the_chunk_up_to_the_buffer():
    assert cache_stages(Grows(), 64, 16) == [16, 32, 64]
    assert cache_stages(Grows(), 40, 8) == [8, 16, 32, 40]
    assert cache_stages(Grows(), 10, 16) == [10]
    assert cache_stages(Grows(), 64, 0) == [64]  # off
    assert cache_stages(object(), 64, 16) == [64]  # a cache that does not grow
    (tensor,) = cache_stages(Grows(), tf.constant(64), 16)  # known when the graph runs
    assert int(tensor) == 64


def _seq2seq(end_bias):
    keras.utils.set_random_seed(3)
    model = TransformerSeq2Seq(V, V, L, hidden_dim=16, intermediate_dim=32, num_heads=2,
                               num_layers=2, dropout=0.0)  # fmt: skip
    model({"encoder_token_ids": np.ones((1, 5), "int32"),
           "decoder_token_ids": np.ones((1, 5), "int32")})  # fmt: skip
    dense = model.decoder.output_dense
    bias = np.zeros(V, "float32")
    bias[END_ID] = end_bias  # outputs end at many lengths, some only at max_length
    dense.bias.assign(bias)
    return model


def _sources():
    rng = np.random.default_rng(0)
    sources = rng.integers(4, V, size=(6, 9)).astype("int32")
    sources[1, 4:] = 0  # right padding
    sources[4, 2:] = 0
    return sources


def test_the_model_knows_its_cache_grows():
    assert _seq2seq(0.0).cache_grows
    rnn = RNNAttentionSeq2Seq(V, V, hidden_dim=8, embedding_dim=8)
    assert not rnn.cache_grows
    assert not RNNLanguageModel(vocabulary_size=V, embedding_dim=8, hidden_dim=8).cache_grows


@pytest.mark.parametrize("end_bias", [-4.0, 1.5])
def test_growing_cache_gives_the_full_caches_outputs(end_bias):
    model = _seq2seq(end_bias)
    sources = _sources()
    full = beam_search(model, sources, L, beam_size=3, cache_chunk=0)
    grown = beam_search(model, sources, L, beam_size=3, cache_chunk=4)  # 4, 8, 16, 24
    lengths = (np.asarray(full[0]) > 0).sum(axis=1)
    if end_bias < 0:  # no output ends early: every stage of the cache was used
        assert lengths.max() == L
    else:  # some end in the first stages, some cross them
        assert lengths.min() <= 8 < lengths.max()
    np.testing.assert_array_equal(np.asarray(grown[0]), np.asarray(full[0]))
    np.testing.assert_allclose(np.asarray(grown[1]), np.asarray(full[1]), atol=1e-5)


def test_growing_cache_in_a_traced_graph_with_a_dynamic_batch():
    model = _seq2seq(-4.0)
    sources = _sources()

    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32)])
    def serve(ids):
        return beam_search(model, ids, L, beam_size=2, cache_chunk=4)

    traced = serve(tf.constant(sources))
    full = beam_search(model, sources, L, beam_size=2, cache_chunk=0)
    np.testing.assert_array_equal(np.asarray(traced[0]), np.asarray(full[0]))
    np.testing.assert_allclose(np.asarray(traced[1]), np.asarray(full[1]), atol=1e-5)


def test_language_model_with_a_prompt_across_stages():
    keras.utils.set_random_seed(5)
    model = TransformerLanguageModel(V, sequence_length=L, hidden_dim=16, intermediate_dim=32,
                                     num_heads=2, num_layers=2)  # fmt: skip
    model({"decoder_token_ids": np.ones((1, 3), "int32")})
    assert model.cache_grows
    prompt = np.zeros((3, 7), "int32")
    prompt[:, 0] = START_ID
    prompt[0, 1:7] = [5, 6, 7, 8, 9, 10]  # crosses the first stage (4 positions)
    prompt[1, 1:3] = [11, 12]
    prompt[2, 1:4] = [13, 14, 15]
    full = beam_search(model, None, L, beam_size=2, prompt=ops.convert_to_tensor(prompt),
                       cache_chunk=0)  # fmt: skip
    grown = beam_search(model, None, L, beam_size=2, prompt=ops.convert_to_tensor(prompt),
                        cache_chunk=4)  # fmt: skip
    np.testing.assert_array_equal(np.asarray(grown[0])[:, :7][prompt > 0], prompt[prompt > 0])
    np.testing.assert_array_equal(np.asarray(grown[0]), np.asarray(full[0]))
    np.testing.assert_allclose(np.asarray(grown[1]), np.asarray(full[1]), atol=1e-5)
