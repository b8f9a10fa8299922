"""``min_length``: no strategy returns an empty output because ``[END]`` came first."""

import keras
import numpy as np
import pytest

from seqtasks.decoding import DecodingOptions, decode, sequence_scores, stored_options
from seqtasks.models.language_models import RNNLanguageModel
from seqtasks.text import END_ID, PAD_ID, START_ID

VOCAB, WIDTH, LENGTH = 10, 8, 8


@pytest.fixture(scope="module")
def lm():
    keras.utils.set_random_seed(0)
    # seqtasks' own decoder-only GRU model: one layer, no dropout.
    model = RNNLanguageModel(VOCAB, WIDTH, WIDTH, num_layers=1, cell="gru", dropout=0.0)
    model({"decoder_token_ids": np.ones((1, 3), "int32")})
    kernel = np.random.default_rng(0).normal(scale=0.5, size=(WIDTH, VOCAB))
    bias = np.zeros(VOCAB, "float32")
    bias[END_ID] = 8.0  # [END] wins by far at every step
    model.output_layer.set_weights([kernel.astype("float32"), bias])
    return model


PROMPT = np.array([[START_ID], [START_ID]], "int32")
STRATEGIES = [
    DecodingOptions(strategy="greedy"),
    DecodingOptions(strategy="beam", beam_size=3),
    DecodingOptions(strategy="sample", seed=7),
]


def generated(row) -> list[int]:
    """The generated tokens of one output row, up to and excluding ``[END]``."""
    tokens = [int(t) for t in row[1:]]
    return tokens[: tokens.index(END_ID)] if END_ID in tokens else tokens


@pytest.mark.parametrize("options", STRATEGIES, ids=lambda o: o.strategy)
def test_without_min_length_the_output_is_empty(lm, options):
    options = DecodingOptions(**{**options.__dict__, "min_length": 0})
    ids, _ = decode(lm, None, options, LENGTH, prompt=PROMPT)
    ids = np.asarray(ids)
    assert ids[:, 1].tolist() == [END_ID, END_ID]
    assert [generated(row) for row in ids] == [[], []]


@pytest.mark.parametrize("options", STRATEGIES, ids=lambda o: o.strategy)
def test_default_min_length_gives_at_least_one_token(lm, options):
    assert options.min_length == 1
    ids, scores = decode(lm, None, options, LENGTH, prompt=PROMPT)
    ids = np.asarray(ids)
    for row in ids:
        tokens = generated(row)
        assert len(tokens) >= 1
        assert all(t not in (PAD_ID, START_ID, END_ID) for t in tokens)
    # With [END] this likely, it comes right after the one forced token.
    assert ids[:, 2].tolist() == [END_ID, END_ID]
    assert np.all(np.isfinite(np.asarray(scores)))


@pytest.mark.parametrize("min_length", [2, 4])
@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_longer_min_length(lm, strategy, min_length):
    options = DecodingOptions(strategy=strategy, seed=3, min_length=min_length)
    ids, _ = decode(lm, None, options, LENGTH, prompt=PROMPT)
    lengths = [len(generated(row)) for row in np.asarray(ids)]
    if strategy == "sample":  # [END] is only very likely once allowed
        assert min(lengths) >= min_length
    else:
        assert lengths == [min_length, min_length]


def test_min_length_counts_after_the_prompt(lm):
    prompt = np.array([[START_ID, 5, 6], [START_ID, 7, PAD_ID]], "int32")
    for strategy in ("greedy", "beam"):
        ids, _ = decode(lm, None, DecodingOptions(strategy=strategy), LENGTH, prompt=prompt)
        ids = np.asarray(ids)
        assert ids[0, :3].tolist() == [START_ID, 5, 6] and ids[1, :2].tolist() == [START_ID, 7]
        assert ids[0, 3] not in (END_ID, PAD_ID) and ids[0, 4] == END_ID
        assert ids[1, 2] not in (END_ID, PAD_ID) and ids[1, 3] == END_ID


def test_beam_scores_stay_the_models_log_probabilities(lm):
    # [END] is masked after the softmax: the score is the unconstrained model's log P / |y|.
    ids, scores = decode(lm, None, DecodingOptions(beam_size=2), LENGTH, prompt=PROMPT)
    rescored = sequence_scores(lm, None, ids)
    np.testing.assert_allclose(np.asarray(scores), np.asarray(rescored), rtol=1e-4, atol=1e-4)


def test_options_validate_and_old_exports_default_to_one():
    with pytest.raises(ValueError, match="min_length must be >= 0"):
        DecodingOptions(min_length=-1)
    assert stored_options({"strategy": "greedy", "beam_size": 2}).min_length == 1
    assert stored_options({"strategy": "greedy", "min_length": 0}).min_length == 0
    assert stored_options(None) == DecodingOptions()
