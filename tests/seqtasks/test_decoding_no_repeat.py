"""No-repeat n-gram blocking in every decoding strategy (seqtasks.decoding): the mask
equals a brute-force count of the buffer's n-grams, and a model that wants to loop never
emits a repeated n-gram with greedy, beam or sampling."""


import numpy as np
import pytest
from keras import ops

from seqtasks.decoding import DecodingOptions, decode, repeated_ngram_mask
from seqtasks.text import END_ID, START_ID

V = 12
CYCLE = (4, 5, 6)  # the looping model's favourite continuation: 4 5 6 4 5 6 ...


def _brute_force(tokens, index, size, vocabulary):
    blocked = np.zeros((len(tokens), vocabulary), bool)
    for r, row in enumerate(tokens):
        seen = row[:index].tolist()
        prefix = seen[len(seen) - size + 1 :] if size > 1 else []
        if size > 1 and (len(prefix) < size - 1 or 0 in prefix):
            continue
        for s in range(len(seen) - size + 1):
            gram = seen[s : s + size]
            if 0 not in gram and gram[:-1] == prefix:
                blocked[r, gram[-1]] = True
    return blocked


@pytest.mark.parametrize("size", [1, 2, 3])
def test_the_mask_blocks_exactly_the_tokens_completing_a_seen_ngram(size):
    rng = np.random.default_rng(size)
    tokens = rng.integers(1, 5, size=(6, 10)).astype("int32")  # small alphabet: many repeats
    tokens[0, 3] = 0  # padding inside a row never counts
    tokens[:, 0] = START_ID
    for index in range(1, 10):
        got = np.asarray(repeated_ngram_mask(ops.convert_to_tensor(tokens), index, size, V))
        np.testing.assert_array_equal(got, _brute_force(tokens, index, size, V), err_msg=str(index))


class LoopingModel:
    """A decoder-only stand-in whose best next token continues CYCLE, then [END] is last."""

    num_static_cache = 0
    encoder_input_name = None

    def _logits(self, previous):
        previous = ops.cast(previous, "int32")
        nxt = 4 + ops.mod(previous - 4 + 1, 3)
        nxt = ops.where(previous < 4, 4, nxt)  # after [START]: 4
        base = -ops.cast(ops.arange(V), "float32") * 0.1  # second choices: lower ids first
        logits = ops.where(ops.arange(V) == nxt[..., None], 5.0, base)
        return ops.where(ops.arange(V) == END_ID, -5.0, logits)

    def init_cache(self, encoder_inputs, max_length, batch_size=None):
        return (ops.zeros((batch_size, 1)),)

    def decode_step(self, token_ids, cache, index):
        return self._logits(token_ids[:, 0]), cache

    def __call__(self, inputs, training=False):
        return self._logits(inputs["decoder_token_ids"])


def _ngrams(row, size):
    row = [t for t in row if t not in (0, START_ID)]
    if END_ID in row:
        row = row[: row.index(END_ID)]
    return [tuple(row[i : i + size]) for i in range(len(row) - size + 1)]


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
@pytest.mark.parametrize("size", [2, 3])
def test_no_strategy_repeats_an_ngram_when_blocking(strategy, size):
    prompt = ops.convert_to_tensor(np.full((3, 1), START_ID, "int32"))
    kwargs = {"strategy": strategy, "beam_size": 3, "seed": 7, "temperature": 0.5}
    free, _ = decode(LoopingModel(), None, DecodingOptions(**kwargs), 16, prompt=prompt)
    assert any(len(set(g)) < len(g) for g in (_ngrams(r, size) for r in np.asarray(free)))
    options = DecodingOptions(**kwargs, no_repeat_ngram_size=size)
    blocked, scores = decode(LoopingModel(), None, options, 16, prompt=prompt)
    for row in np.asarray(blocked):
        grams = _ngrams(row.tolist(), size)
        assert len(grams) >= 8 and len(set(grams)) == len(grams), row
    assert np.all(np.isfinite(np.asarray(scores)))


def test_a_negative_size_is_refused():
    with pytest.raises(ValueError, match="no_repeat_ngram_size must be >= 0"):
        DecodingOptions(no_repeat_ngram_size=-1)


def test_the_option_reaches_the_decoding_options_of_a_recipe_config():
    from seqtasks.decoding import options_from_config
    from tasks import get_recipe

    config = get_recipe("captioning").make_config(no_repeat_ngram_size=3)
    assert options_from_config(config).no_repeat_ngram_size == 3
