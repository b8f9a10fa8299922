"""Decoder-only language models: cached steps equal full passes, padding changes nothing
before it, tied embeddings, save/load, decoding with a prompt, learning real text."""

import os

import keras
import numpy as np
import pytest

from seqtasks.decoding import DecodingOptions, decode
from seqtasks.models.language_models import RNNLanguageModel, TransformerLanguageModel
from seqtasks.text import END_ID, PAD_ID, START_ID

VOCAB, LENGTH = 20, 12
KINDS = ["lstm", "gru", "rnn", "transformer", "mingru", "minlstm", "mingru-block", "mingru-conv"]


def tiny(kind: str, tie: bool = False, dropout: float = 0.0):
    keras.utils.set_random_seed(0)
    if kind == "transformer":
        model = TransformerLanguageModel(
            VOCAB, LENGTH, hidden_dim=8, intermediate_dim=16, num_heads=2, num_layers=2,
            dropout=dropout, tie_embeddings=tie,
        )  # fmt: skip
    else:
        width = 8
        cell, _, variant = kind.partition("-")
        model = RNNLanguageModel(
            VOCAB, embedding_dim=width, hidden_dim=width, num_layers=2, cell=cell,
            dropout=dropout, tie_embeddings=tie, residual_blocks=variant == "block",
            conv_kernel_size=3 if variant == "conv" else 0,
        )  # fmt: skip
    model({"decoder_token_ids": np.ones((1, 3), "int32")})
    return model


def ids(rows):
    return np.array(rows, "int32")


@pytest.mark.parametrize("kind", KINDS)
def test_cached_steps_equal_the_full_pass(kind):
    model = tiny(kind)
    tokens = ids([[START_ID, 5, 6, 7, 8, 9], [START_ID, 10, 11, 12, 13, 14]])
    full = np.asarray(model({"decoder_token_ids": tokens}))
    assert full.shape == (2, 6, VOCAB) and full.dtype == np.float32
    cache = model.init_cache(None, LENGTH, batch_size=2)
    for t in range(tokens.shape[1]):
        logits, cache = model.decode_step(tokens[:, t : t + 1], cache, t)
        np.testing.assert_allclose(np.asarray(logits), full[:, t], atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_padding_never_changes_an_earlier_position(kind):
    model = tiny(kind)
    short = np.asarray(model({"decoder_token_ids": ids([[START_ID, 5, 6]])}))
    padded = np.asarray(model({"decoder_token_ids": ids([[START_ID, 5, 6, PAD_ID, PAD_ID]])}))
    np.testing.assert_allclose(padded[:, :3], short, atol=1e-5)
    # A [PAD] step keeps the cache: the next real token gives the same logits.
    cache = model.init_cache(None, LENGTH, batch_size=1)
    for t, token in enumerate([START_ID, 5]):
        _, cache = model.decode_step(ids([[token]]), cache, t)
    if kind != "transformer":  # a Transformer's [PAD] fills a position: RNN states only
        _, after_pad = model.decode_step(ids([[PAD_ID]]), cache, 2)
        for a, b in zip(cache, after_pad):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_tied_embeddings_share_the_input_matrix(kind):
    tied, untied = tiny(kind, tie=True), tiny(kind)
    assert untied.count_params() - tied.count_params() == 8 * VOCAB  # no output kernel
    embedding = tied.get_layer("embedding")
    matrix = embedding.embeddings if kind != "transformer" else embedding.token_embedding.embeddings
    matrix.assign(np.zeros_like(np.asarray(matrix)))
    logits = np.asarray(tied({"decoder_token_ids": ids([[START_ID, 5]])}))
    np.testing.assert_allclose(logits, 0.0, atol=1e-6)  # the output used the same matrix
    with pytest.raises(ValueError, match="tie_embeddings needs"):
        RNNLanguageModel(VOCAB, embedding_dim=8, hidden_dim=16, tie_embeddings=True)


@pytest.mark.parametrize("kind", ["gru", "transformer", "minlstm-block", "mingru-conv"])
@pytest.mark.parametrize("tie", [False, True])
def test_save_and_load_give_the_same_logits(kind, tie, tmp_path):
    model = tiny(kind, tie=tie)
    tokens = ids([[START_ID, 5, 6, 7]])
    path = os.path.join(tmp_path, "lm.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(
        np.asarray(loaded({"decoder_token_ids": tokens})),
        np.asarray(model({"decoder_token_ids": tokens})),
        atol=1e-6,
    )


def full_pass_greedy(model, prompt, length):
    tokens = [int(t) for t in prompt if t != PAD_ID]
    while len(tokens) < length and tokens[-1] != END_ID:
        logits = np.array(model({"decoder_token_ids": ids([tokens])}))[0, -1]
        logits[[PAD_ID, START_ID]] = -np.inf
        tokens.append(int(np.argmax(logits)))
    return tokens + [PAD_ID] * (length - len(tokens))


@pytest.mark.parametrize("kind", ["lstm", "transformer", "mingru", "mingru-conv"])
def test_decoding_with_a_prompt_equals_greedy_full_passes(kind):
    model = tiny(kind)
    prompts = ids([[START_ID, 5, 6], [START_ID, 9, PAD_ID]])
    options = DecodingOptions(strategy="greedy", min_length=0)
    out, scores = decode(model, None, options, LENGTH, prompt=prompts)
    assert np.asarray(out).tolist() == [full_pass_greedy(model, p, LENGTH) for p in prompts]
    beam, _ = decode(
        model, None, DecodingOptions(beam_size=1, min_length=0), LENGTH, prompt=prompts
    )
    assert np.asarray(beam).tolist() == np.asarray(out).tolist()
    assert np.all(np.isfinite(np.asarray(scores)))


def test_a_tiny_character_model_learns_real_text():
    from conftest import SHARED_DATA

    with open(os.path.join(SHARED_DATA, "tinyshakespeare", "train.txt"), encoding="utf-8") as f:
        text = f.read(6000)
    chars = sorted(set(text))
    index = {c: i + 4 for i, c in enumerate(chars)}  # after the 4 reserved ids
    stream = np.array([index[c] for c in text], "int32")
    window = 32
    rows = stream[: len(stream) // (window + 1) * (window + 1)].reshape(-1, window + 1)
    x, y = {"decoder_token_ids": rows[:, :-1]}, rows[:, 1:]
    keras.utils.set_random_seed(0)
    model = RNNLanguageModel(len(chars) + 4, embedding_dim=32, hidden_dim=64, num_layers=1)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(x, y, batch_size=16, epochs=8, verbose=0).history["loss"]
    # Uniform guessing costs log(V) nats; the letter frequencies alone about 3.3.
    assert history[0] > 3.0 and history[-1] < 2.6, history


def test_the_convolution_reads_earlier_tokens_only_and_is_cached():
    """A causal kernel of 3: a later token changes no earlier position's logits; the cache
    holds the last two embeddings (the steps equal the full pass: the tests above)."""
    model = tiny("mingru-conv")
    assert model.convolution.padding == "causal" and model.conv_kernel_size == 3
    base = ids([[START_ID, 5, 6, 7, 8, 9]])
    later = ids([[START_ID, 5, 6, 7, 8, 13]])
    a = np.asarray(model({"decoder_token_ids": base}))
    b = np.asarray(model({"decoder_token_ids": later}))
    np.testing.assert_array_equal(a[:, :5], b[:, :5])
    assert not np.allclose(a[:, 5], b[:, 5])
    cache = model.init_cache(None, LENGTH, batch_size=1)
    assert len(cache) == 2 + 1 and tuple(cache[-1].shape) == (1, 2, 8)
    for t, token in enumerate([START_ID, 5, 6]):
        _, cache = model.decode_step(ids([[token]]), cache, t)
    embeddings = np.asarray(model.embedding(ids([[5, 6]])))
    np.testing.assert_allclose(np.asarray(cache[-1]), embeddings, atol=1e-6)
    with pytest.raises(ValueError, match="conv_kernel_size must be >= 0"):
        RNNLanguageModel(VOCAB, conv_kernel_size=-1)
