"""Seq2seq models and decoding: cached steps equal full passes, beam 1 equals greedy."""

import keras
import numpy as np
import pytest

from seqtasks.decoding import DecodingOptions, beam_search, decode, sequence_scores
from seqtasks.losses import MaskedCrossEntropy, WarmupInverseSqrt, masked_accuracy
from seqtasks.models.seq2seq import RNNAttentionSeq2Seq, SourceAttention, TransformerSeq2Seq
from seqtasks.text import END_ID, START_ID

VOCAB = 12
MAX_LENGTH = 7


def tiny(kind, **kwargs):
    keras.utils.set_random_seed(0)
    if kind == "transformer":
        model = TransformerSeq2Seq(
            VOCAB, VOCAB, sequence_length=10, hidden_dim=8, intermediate_dim=8, num_heads=2,
            num_layers=2, dropout=0.0,
        )  # fmt: skip
    else:
        model = RNNAttentionSeq2Seq(
            VOCAB, VOCAB, embedding_dim=6, hidden_dim=4, cell=kind.split("-")[1], dropout=0.0,
            **kwargs,
        )  # fmt: skip
    source = np.array([[5, 6, 7, 8], [9, 4, 0, 0]], np.int32)
    model({"encoder_token_ids": source, "decoder_token_ids": source})
    return model, source


MODELS = ["transformer", "rnn-lstm", "rnn-gru", "rnn-mingru", "rnn-minlstm"]


@pytest.mark.parametrize("kind", MODELS)
def test_cached_steps_equal_the_teacher_forced_pass(kind):
    model, source = tiny(kind)
    target = np.array([[START_ID, 4, 5, 6, 7], [START_ID, 8, 9, 10, 11]], np.int32)
    full = np.asarray(model({"encoder_token_ids": source, "decoder_token_ids": target}))
    cache = model.init_cache(source, MAX_LENGTH)
    for index in range(target.shape[1]):
        logits, cache = model.decode_step(target[:, index : index + 1], cache, index)
        np.testing.assert_allclose(np.asarray(logits), full[:, index], atol=1e-5)


@pytest.mark.parametrize("min_length", [0, 1])
@pytest.mark.parametrize("kind", MODELS)
def test_beam_size_one_equals_greedy_and_scores_match_rescoring(kind, min_length):
    model, source = tiny(kind)
    greedy_ids, greedy_scores = decode(
        model, source, DecodingOptions(strategy="greedy", min_length=min_length), MAX_LENGTH
    )
    beam_ids, beam_scores = beam_search(
        model, source, MAX_LENGTH, beam_size=1, min_length=min_length
    )
    greedy_ids, beam_ids = np.asarray(greedy_ids), np.asarray(beam_ids)
    assert greedy_ids.shape == (2, MAX_LENGTH) and (greedy_ids[:, 0] == START_ID).all()
    # Same tokens up to and including the first [END] (greedy keeps sampling after it).
    for g, b in zip(greedy_ids, beam_ids):
        end = list(g).index(END_ID) + 1 if END_ID in g else MAX_LENGTH
        np.testing.assert_array_equal(g[:end], b[:end])
    np.testing.assert_allclose(np.asarray(beam_scores), np.asarray(greedy_scores), atol=1e-5)


@pytest.mark.parametrize("kind", ["transformer", "rnn-lstm"])
def test_beam_search_score_is_the_length_normalised_log_probability(kind):
    model, source = tiny(kind)
    ids, scores = beam_search(model, source, MAX_LENGTH, beam_size=3, length_penalty=0.0)
    rescored = sequence_scores(model, source, ids)
    np.testing.assert_allclose(np.asarray(scores), np.asarray(rescored), atol=1e-5)
    # A wider beam never finds a worse best hypothesis under its own ranking (alpha = 0).
    ids_narrow, narrow = beam_search(model, source, MAX_LENGTH, beam_size=1, length_penalty=0.0)

    def lengths(ids):
        return [
            (list(row[1:]).index(END_ID) + 1) if END_ID in row[1:] else MAX_LENGTH - 1
            for row in np.asarray(ids)
        ]

    wide_total = np.asarray(scores) * lengths(ids)
    narrow_total = np.asarray(narrow) * lengths(ids_narrow)
    assert (wide_total >= narrow_total - 1e-5).all()


def test_sampling_is_seeded_and_stays_in_vocabulary():
    model, source = tiny("transformer")
    options = DecodingOptions(strategy="sample", top_k=3, temperature=0.7, seed=4)
    ids, scores = decode(model, source, options, MAX_LENGTH)
    ids = np.asarray(ids)
    assert ids.shape == (2, MAX_LENGTH) and ids.min() >= 0 and ids.max() < VOCAB
    assert np.isfinite(np.asarray(scores)).all() and (np.asarray(scores) <= 0).all()
    top_p, _ = decode(model, source, DecodingOptions(strategy="sample", top_p=0.5, seed=1), 5)
    assert np.asarray(top_p).shape == (2, 5)


def test_attention_weights_ignore_padding():
    for score in ("additive", "multiplicative"):
        layer = SourceAttention(4, score)
        keys = np.random.default_rng(0).normal(size=(1, 3, 5)).astype("float32")
        query = np.ones((1, 2, 5), "float32")
        context, weights = layer(query, keys, np.array([[True, True, False]]))
        weights = np.asarray(weights)
        assert weights.shape == (1, 2, 3)
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
        assert (weights[..., 2] == 0).all()
        expected = weights @ keys[0]
        np.testing.assert_allclose(np.asarray(context), expected, atol=1e-5)


@pytest.mark.parametrize("kind", ["transformer", "rnn-lstm"])
def test_cross_attention_shape_and_rows_sum_to_one(kind):
    model, source = tiny(kind)
    target = np.array([[START_ID, 4, 5], [START_ID, 6, 0]], np.int32)
    weights = np.asarray(model.cross_attention(source, target))
    assert weights.shape == (2, 3, 4)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert np.abs(weights[1, :, 2:]).max() < 1e-6  # padded source positions get nothing


def test_masked_loss_label_smoothing_and_accuracy_values():
    logits = np.log(np.array([[[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]], "float32"))
    y = np.array([[1, 1, 0]], np.int32)  # the last position is padding
    loss = float(MaskedCrossEntropy()(y, logits))
    assert loss == pytest.approx(-(np.log(0.2) + np.log(0.8)) / 2, rel=1e-5)
    smoothed = float(MaskedCrossEntropy(label_smoothing=0.3)(y, logits))
    uniform = -np.mean(np.log([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]), axis=-1)
    expected = 0.7 * loss + 0.3 * uniform.mean()
    assert smoothed == pytest.approx(expected, rel=1e-5)
    assert float(masked_accuracy(y, logits)) == pytest.approx(0.5)


def test_warmup_schedule_values():
    schedule = WarmupInverseSqrt(1e-3, warmup_steps=100)
    assert float(schedule(49)) == pytest.approx(5e-4)
    assert float(schedule(99)) == pytest.approx(1e-3)
    assert float(schedule(399)) == pytest.approx(5e-4)


def test_no_plateau_callback_for_a_scheduled_optimizer():
    from seqtasks.training import reduce_lr_on_plateau
    from tasks import get_recipe

    recipe = get_recipe("translation")
    for model_name, expected in (("transformer", None), ("rnn-attention", 0.5)):
        config = recipe.make_config(model=model_name, reduce_lr_factor=0.5)
        model, _ = tiny("transformer" if model_name == "transformer" else "rnn-lstm")
        recipe.compile_model(model, config)
        scheduled = recipe.uses_schedule(config)
        assert scheduled == (model_name == "transformer")
        # The recipe's word agrees with the optimizer it compiled: a scheduled rate moves.
        rate = model.optimizer.learning_rate
        expected_rate = 1e-6 if scheduled else config.learning_rate  # warm-up step 1 of 1000
        assert float(rate) == pytest.approx(expected_rate, rel=1e-4)
        callback = reduce_lr_on_plateau(config, scheduled=scheduled)
        assert (callback and callback.factor) == expected


@pytest.mark.parametrize("kind", MODELS)
def test_freeze_makes_exactly_the_named_part_non_trainable(kind):
    from seqtasks.models.seq2seq import freeze

    for part in ("encoder", "embeddings"):
        model, _ = tiny(kind)
        names = model.freezable_parts()[part]
        frozen = freeze(model, part)
        assert frozen == [layer.name for layer in model.layers if layer.name in names]
        assert {layer.name for layer in model.layers if not layer.trainable} == set(frozen)
        if part == "embeddings":
            assert sorted(frozen) == ["source_embedding", "target_embedding"]
        else:
            assert "source_embedding" in frozen and len(frozen) >= 2
            assert all(n == "source_embedding" or n.startswith("encoder_") for n in frozen)
            assert not any(n.startswith("decoder_") for n in frozen)
    model, _ = tiny(kind)
    assert freeze(model, "none") == [] and all(layer.trainable for layer in model.layers)
    with pytest.raises(ValueError, match="`part` must be one of"):
        freeze(model, "decoder")
