"""Decoding without an encoder input (decoder-only models) and with a prompt prefix."""

import keras
import numpy as np
import pytest

from seqtasks.decoding import DecodingOptions, decode, sequence_scores
from seqtasks.models.language_models import RNNLanguageModel
from seqtasks.text import END_ID, PAD_ID, START_ID

VOCAB, WIDTH, LENGTH = 12, 8, 9


@pytest.fixture(scope="module")
def lm():
    keras.utils.set_random_seed(0)
    # seqtasks' own decoder-only GRU model: one layer, no dropout.
    model = RNNLanguageModel(VOCAB, WIDTH, WIDTH, num_layers=1, cell="gru", dropout=0.0)
    model({"decoder_token_ids": np.ones((1, 3), "int32")})
    # Large random output weights: a peaked, input-dependent next-token distribution.
    kernel = np.random.default_rng(0).normal(scale=3.0, size=(WIDTH, VOCAB))
    model.output_layer.set_weights([kernel.astype("float32"), np.zeros(VOCAB, "float32")])
    return model


PROMPTS = np.array([[START_ID, 5, 6, 7], [START_ID, 8, PAD_ID, PAD_ID]], "int32")


def full_pass_greedy(model, prompt):
    """Greedy decoding by re-running the whole prefix each step (no cache)."""
    tokens = [int(t) for t in prompt if t != PAD_ID]
    while len(tokens) < LENGTH and tokens[-1] != END_ID:
        logits = np.array(model({"decoder_token_ids": np.array([tokens], "int32")}))[0, -1]
        logits[[PAD_ID, START_ID]] = -np.inf
        tokens.append(int(np.argmax(logits)))
    return tokens + [PAD_ID] * (LENGTH - len(tokens))


@pytest.mark.parametrize(
    "options", [DecodingOptions(strategy="greedy"), DecodingOptions(beam_size=1)]
)
def test_cached_greedy_with_a_prompt_equals_full_passes(lm, options):
    ids, scores = decode(lm, None, options, LENGTH, prompt=PROMPTS)
    ids = np.asarray(ids)
    assert ids.shape == (2, LENGTH) and np.asarray(scores).shape == (2,)
    assert ids.tolist() == [full_pass_greedy(lm, p) for p in PROMPTS]
    # Both rows begin with their prompt and generate after it.
    assert ids[0, :4].tolist() == PROMPTS[0].tolist() and ids[1, :2].tolist() == [START_ID, 8]


def test_scores_cover_only_the_generated_tokens(lm):
    ids, scores = decode(lm, None, DecodingOptions(strategy="greedy"), LENGTH, prompt=PROMPTS)
    ids = np.asarray(ids)
    for row, (prompt, score) in enumerate(zip(PROMPTS, np.asarray(scores))):
        start = int(np.sum(prompt != PAD_ID))
        generated = [t for t in ids[row, start:]]
        if END_ID in generated:
            generated = generated[: generated.index(END_ID) + 1]
        total = 0.0
        for i, token in enumerate(generated):
            prefix = ids[row : row + 1, : start + i]
            logits = np.array(lm({"decoder_token_ids": prefix}))[0, -1].astype(np.float64)
            logits[[PAD_ID, START_ID]] = -1e9
            total += logits[token] - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()
        assert score == pytest.approx(total / len(generated), abs=1e-4)
    # Without the prompt mask, the prompt's own tokens would be scored too.
    unmasked = sequence_scores(lm, None, ids)
    assert not np.allclose(np.asarray(unmasked), np.asarray(scores))


def test_beam_search_keeps_the_prompt_and_beats_or_equals_greedy(lm):
    greedy, greedy_scores = decode(
        lm, None, DecodingOptions(strategy="greedy"), LENGTH, prompt=PROMPTS
    )
    beam, beam_scores = decode(
        lm, None, DecodingOptions(beam_size=4, length_penalty=0.0), LENGTH, prompt=PROMPTS
    )
    beam = np.asarray(beam)
    assert beam[0, :4].tolist() == PROMPTS[0].tolist() and beam[1, :2].tolist() == [START_ID, 8]

    def total(ids, scores, prompt):
        generated = list(ids[int(np.sum(prompt != PAD_ID)) :])
        n = generated.index(END_ID) + 1 if END_ID in generated else len(generated)
        return scores * n, n

    for row in range(2):
        beam_total, _ = total(beam[row], float(np.asarray(beam_scores)[row]), PROMPTS[row])
        greedy_total, _ = total(
            np.asarray(greedy)[row], float(np.asarray(greedy_scores)[row]), PROMPTS[row]
        )
        assert beam_total >= greedy_total - 1e-4  # log P of the beam's best >= greedy's


def test_sampling_from_a_prompt_is_seeded_and_keeps_the_prompt(lm):
    options = DecodingOptions(strategy="sample", seed=7, temperature=1.0)
    first, _ = decode(lm, None, options, LENGTH, prompt=PROMPTS)
    again, _ = decode(lm, None, options, LENGTH, prompt=PROMPTS)
    first = np.asarray(first)
    assert first[0, :4].tolist() == PROMPTS[0].tolist() and first[1, :2].tolist() == [START_ID, 8]
    assert first.tolist() == np.asarray(again).tolist()
    assert not np.isin(first[:, 1:], [START_ID]).any()


def test_a_decoder_only_model_needs_a_prompt(lm):
    with pytest.raises(ValueError, match="a decoder-only model needs a prompt"):
        decode(lm, None, DecodingOptions(strategy="greedy"), LENGTH)
