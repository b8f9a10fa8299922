"""MinRNNBlock (Feng et al. 2024's residual block): the bidirectional block is the
Bidirectional recurrence plus the block's residual and feed-forward paths, padding changes
nothing, configs round-trip, and the classifier stacks blocks with ``residual_blocks``."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from seqtasks.models.classifier import build_text_classifier
from seqtasks.models.min_rnn_block import MinRNNBlock


def _inputs(rng, batch=3, steps=7, dim=5):
    x = rng.normal(size=(batch, steps, dim)).astype("float32")
    mask = np.ones((batch, steps), bool)
    mask[1, 4:] = False  # right padding
    mask[2, 1:] = False
    return x, mask


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_the_bidirectional_block_is_the_block_of_both_directions(cell):
    rng = np.random.default_rng(0)
    x, mask = _inputs(rng)
    block = MinRNNBlock(4, cell, bidirectional=True, return_state=True)
    outputs, last = block(x, mask=mask)
    assert tuple(outputs.shape) == (3, 7, 8) and tuple(last.shape) == (3, 8)
    assert block.width == 8 and block.intermediate_dim == 32
    # The same arithmetic written out from the block's own sublayers.
    states, forward, backward = block.rnn(block.norm1(x), mask=mask)
    y = block.projection(x) + states
    expected = y + block.ffn_out(block.ffn_in(block.norm2(y)))
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    np.testing.assert_allclose(last, np.concatenate([forward, backward], -1), atol=1e-6)
    # The backward half of the state read the real tokens only: row 2 has one.
    alone, _, back_alone = block.rnn(block.norm1(x[2:3, :1]))
    np.testing.assert_allclose(np.asarray(last)[2, 4:], np.asarray(back_alone)[0], atol=1e-5)
    np.testing.assert_allclose(np.asarray(states)[2, 0], np.asarray(alone)[0, 0], atol=1e-5)


def test_padding_never_changes_a_bidirectional_blocks_real_positions():
    rng = np.random.default_rng(1)
    x, mask = _inputs(rng)
    block = MinRNNBlock(4, "mingru", bidirectional=True, return_state=True)
    outputs, last = block(x, mask=mask)
    noisy = np.where(mask[..., None], x, rng.normal(size=x.shape).astype("float32") * 50)
    padded = np.concatenate([noisy, np.zeros((3, 5, 5), "float32")], axis=1)
    more_mask = np.concatenate([mask, np.zeros((3, 5), bool)], axis=1)
    outputs2, last2 = block(padded, mask=more_mask)
    np.testing.assert_allclose(
        np.asarray(outputs2)[:, :7][mask], np.asarray(outputs)[mask], atol=1e-5
    )
    np.testing.assert_allclose(last2, last, atol=1e-5)


def test_a_bidirectional_block_refuses_a_state_and_a_step():
    block = MinRNNBlock(4, bidirectional=True, name="bi")
    x = np.zeros((2, 3, 4), "float32")
    with pytest.raises(ValueError, match="bi: a bidirectional block takes no initial_state"):
        block(x, initial_state=[np.zeros((2, 4), "float32")])
    with pytest.raises(ValueError, match="bi: a bidirectional block has no step mode"):
        block.decode_step(x[:, 0], np.zeros((2, 4), "float32"))


def test_a_classifier_of_residual_blocks_round_trips_and_ignores_padding(tmp_path):
    model = build_text_classifier(
        num_classes=2, vocabulary_size=50, sequence_length=20, kind="bimingru",
        embedding_dim=6, hidden_dim=4, num_layers=2, intermediate_dim=12,
        residual_blocks=True, dropout=0.1,
    )  # fmt: skip
    blocks = [layer for layer in model.layers if isinstance(layer, MinRNNBlock)]
    assert [b.name for b in blocks] == ["bimingru_0", "bimingru_1"]
    assert all(b.bidirectional and b.intermediate_dim == 12 for b in blocks)
    # 6 -> 8 wide (a projection on the residual path), then 8 -> 8 (none)
    assert blocks[0].projection is not None and blocks[1].projection is None
    ids = np.array([[5, 6, 7, 0, 0], [9, 3, 0, 0, 0]], "int32")
    probabilities = np.asarray(model(ids))
    longer = np.concatenate([ids, np.zeros((2, 6), "int32")], axis=1)
    np.testing.assert_allclose(model(longer), probabilities, atol=1e-5)
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded(ids), probabilities, atol=1e-6)
    assert reloaded.get_layer("bimingru_1").get_config()["bidirectional"] is True


def test_residual_blocks_need_a_minimal_recurrence():
    from seqtasks.errors import ConfigError
    from tasks.sentiment_config import SentimentConfig

    with pytest.raises(ValueError, match="`residual_blocks` applies to"):
        build_text_classifier(
            num_classes=2, vocabulary_size=50, sequence_length=20, kind="bilstm",
            residual_blocks=True,
        )  # fmt: skip
    with pytest.raises(ConfigError, match="config field 'residual_blocks': applies to models"):
        SentimentConfig(model="bilstm", residual_blocks=True).check()
