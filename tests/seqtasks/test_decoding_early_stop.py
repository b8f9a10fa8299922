"""Beam search settles an input once no live hypothesis can beat its best finished one:
the same outputs and scores as the full search, in fewer steps."""

import numpy as np
import pytest
from keras import ops

from seqtasks.decoding import beam_search
from seqtasks.text import END_ID, START_ID

V = 30


class MarkovModel:
    """A decoder-only stand-in: next-token logits from a fixed random table indexed by the
    previous token, [END] likely enough that hypotheses end at many lengths; counts steps."""

    num_static_cache = 0
    encoder_input_name = None

    def __init__(self, seed, end_bias):
        rng = np.random.default_rng(seed)
        table = rng.normal(scale=2.0, size=(V, V)).astype("float32")
        table[:, END_ID] += end_bias
        self.table = ops.convert_to_tensor(table)
        self.steps = 0

    def init_cache(self, encoder_inputs, max_length, batch_size=None):
        return (ops.zeros((batch_size, 1)),)

    def decode_step(self, token_ids, cache, index):
        self.steps += 1
        return ops.take(self.table, token_ids[:, 0], axis=0), cache

    def __call__(self, inputs, training=False):
        return ops.take(self.table, inputs["decoder_token_ids"], axis=0)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("length_penalty", [0.0, 0.6, 1.0])
def test_early_stopping_gives_the_full_searchs_answer_in_fewer_steps(seed, length_penalty):
    rng = np.random.default_rng(100 + seed)
    prompt = np.full((8, 2), START_ID, "int32")
    prompt[:, 1] = rng.integers(4, V, size=8)  # a different first token per input
    prompt = ops.convert_to_tensor(prompt)
    results = {}
    for early in (False, True):
        model = MarkovModel(seed, end_bias=-1.0 + 0.5 * seed)
        tokens, scores = beam_search(model, None, 24, beam_size=4,
                                     length_penalty=length_penalty, prompt=prompt,
                                     early_stopping=early)  # fmt: skip
        results[early] = (np.asarray(tokens), np.asarray(scores), model.steps)
    np.testing.assert_array_equal(results[True][0], results[False][0])
    np.testing.assert_allclose(results[True][1], results[False][1], rtol=0, atol=1e-6)
    assert results[True][2] <= results[False][2]


def test_a_hypothesis_that_never_ends_no_longer_keeps_the_batch_decoding():
    """[END] is the best token after START but the runner-up tokens loop forever: the
    full search decodes to max_length, the early stop after two steps."""
    table = np.full((V, V), -5.0, "float32")
    table[START_ID, END_ID] = 0.0
    table[START_ID, 5] = -1.0
    table[5, 5] = -0.1  # 5 5 5 5 ... never ends, each token costs little
    model = MarkovModel(0, 0.0)
    model.table = ops.convert_to_tensor(table)
    prompt = ops.convert_to_tensor(np.full((2, 1), START_ID, "int32"))
    full = MarkovModel(0, 0.0)
    full.table = model.table
    a = beam_search(full, None, 40, beam_size=2, prompt=prompt, early_stopping=False)
    b = beam_search(model, None, 40, beam_size=2, prompt=prompt)
    np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[0]))
    assert full.steps == 39 and model.steps <= 2
