"""The doubly stochastic attention penalty (Xu et al. 2015, sec. 4.2.1) of the RNN attention
decoder: its value, that it is added only in training, its gradient, and its config."""

import numpy as np
import pytest
import tensorflow as tf

from seqtasks.models.attention import doubly_stochastic_penalty
from seqtasks.models.captioning import RNNCaptioner


def test_the_penalty_of_hand_made_weights():
    # Two real steps over three positions, a padded third step that must not count.
    weights = np.array([[[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]], "float32")
    target = np.array([[True, True, False]])
    source = np.array([[True, True, True]])
    # Totals over steps: 0.5, 1.0, 0.5 -> (0.5^2 + 0 + 0.5^2) / 2 tokens = 0.25
    assert float(doubly_stochastic_penalty(weights, target, source)) == pytest.approx(0.25)
    source = np.array([[True, False, True]])  # a padded source position never counts
    assert float(doubly_stochastic_penalty(weights, target, source)) == pytest.approx(0.25)
    uniform = np.full((1, 3, 3), 1 / 3, "float32")  # every position attended once in total
    full = np.ones((1, 3), bool)
    assert float(doubly_stochastic_penalty(uniform, full, full)) == pytest.approx(0.0, abs=1e-6)


def _captioner(penalty):
    model = RNNCaptioner(30, 8, 16, attention="additive", dropout=0.0, attention_penalty=penalty)
    rng = np.random.default_rng(0)
    inputs = {
        "image_features": rng.normal(size=(3, 4, 5)).astype("float32"),
        "decoder_token_ids": np.array([[1, 7, 8, 0], [1, 9, 0, 0], [1, 5, 6, 7]], "int32"),
    }
    model(inputs)  # build
    return model, inputs


def test_the_decoder_adds_the_weighted_penalty_in_training_only():
    model, inputs = _captioner(2.0)
    model(inputs, training=False)
    assert model.losses == []
    model(inputs, training=True)
    (added,) = model.losses
    weights = model.cross_attention(inputs["image_features"], inputs["decoder_token_ids"])
    mask = inputs["decoder_token_ids"] != 0
    want = 2.0 * doubly_stochastic_penalty(weights, mask, np.ones((3, 4), bool))
    assert float(added) == pytest.approx(float(want), rel=1e-5)
    assert float(added) > 0
    assert model.decoder.get_config()["attention_penalty"] == 2.0
    off, _ = _captioner(0.0)
    off(inputs, training=True)
    assert off.losses == []


def test_the_penalty_gradient_matches_finite_differences():
    model, inputs = _captioner(1.0)
    v = model.decoder.source_attention.v.kernel  # the additive score's output vector

    def penalty():
        model(inputs, training=True)
        return tf.add_n([tf.cast(x, tf.float64) for x in model.losses])

    with tf.GradientTape() as tape:
        value = penalty()
    grad = tape.gradient(value, v).numpy()
    assert np.abs(grad).max() > 1e-4
    base = v.numpy()
    eps = 1e-2
    for index in [(0, 0), (5, 0), (11, 0)]:
        step = np.zeros_like(base)
        step[index] = eps
        v.assign(base + step)
        up = float(penalty())
        v.assign(base - step)
        down = float(penalty())
        v.assign(base)
        assert (up - down) / (2 * eps) == pytest.approx(grad[index], rel=0.02, abs=1e-5)


def test_the_penalty_needs_the_attention_model():
    from seqtasks.errors import ConfigError
    from tasks import get_recipe

    recipe = get_recipe("captioning")
    assert recipe.make_config(model="attention", attention_penalty=1.0).attention_penalty == 1.0
    with pytest.raises(ConfigError, match="'attention_penalty' applies to model=attention"):
        recipe.make_config(model="transformer", attention_penalty=1.0)
