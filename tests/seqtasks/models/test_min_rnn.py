"""MinGRU / MinLSTM (Feng et al. 2024): both scans equal the recurrence's plain loop, the
step mode equals the whole-sequence mode, padding changes nothing, Bidirectional works,
configs and weights round-trip, and a tiny model learns real sentences."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import SST2_TRAIN, stop_at_loss
from seqtasks.models import MinGRU, MinLSTM
from seqtasks.models.min_rnn import gated_scan, log_linear_scan

SCANS = ("sequential", "associative")
LAYERS = (MinGRU, MinLSTM)


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _g(v):
    return np.where(v >= 0, v + 0.5, _sigmoid(v))


def reference_states(layer, x, mask):
    """The paper's sequential algorithm in float64 NumPy; a padded step keeps the state."""
    kernel, bias = (np.asarray(w, np.float64) for w in (layer.kernel, layer.bias))
    units = layer.units
    h = np.zeros((x.shape[0], units))
    states = []
    for t in range(x.shape[1]):
        k = x[:, t].astype(np.float64) @ kernel + bias
        if isinstance(layer, MinGRU):
            z = _sigmoid(k[:, :units])
            new = (1 - z) * h + z * _g(k[:, units:])
        else:
            f, i = _sigmoid(k[:, :units]), _sigmoid(k[:, units : 2 * units])
            new = f / (f + i) * h + i / (f + i) * _g(k[:, 2 * units :])
        h = np.where(mask[:, t : t + 1], new, h)
        states.append(h)
    return np.stack(states, axis=1)


def _inputs(batch=4, steps=29, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    x = (2 * rng.normal(size=(batch, steps, dim))).astype("float32")
    lengths = [steps, 17, 1, 0][:batch]
    mask = np.arange(steps)[None, :] < np.array(lengths)[:, None]  # right padding
    return x, mask


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("cls", LAYERS)
def test_the_scan_equals_the_sequential_recurrence_with_padding(cls, scan):
    x, mask = _inputs()
    layer = cls(5, return_sequences=True, scan=scan, bias_initializer="random_normal")
    out = np.asarray(layer(x, mask=mask))
    np.testing.assert_allclose(out, reference_states(layer, x, mask), atol=1e-5)
    assert out.shape == (4, 29, 5) and out.dtype == np.float32
    assert np.all(out[3] == 0)  # an all-padding row keeps the zero state


@pytest.mark.parametrize("cls", LAYERS)
def test_both_scans_agree_on_long_sequences_and_in_gradients(cls):
    x, _ = _inputs(batch=2, steps=1000, dim=4, seed=1)
    mask = np.ones(x.shape[:2], bool)
    mask[1, 700:] = False
    layers = [cls(3, return_sequences=True, scan=scan) for scan in SCANS]
    layers[0].build(x.shape)
    layers[1].build(x.shape)
    layers[1].set_weights(layers[0].get_weights())
    outputs, gradients = [], []
    for layer in layers:
        with tf.GradientTape() as tape:
            out = layer(x, mask=mask)
            loss = tf.reduce_sum(out * np.linspace(-1, 1, 3))
        outputs.append(np.asarray(out))
        gradients.append([np.asarray(g) for g in tape.gradient(loss, layer.trainable_weights)])
    assert np.all(np.isfinite(outputs[1]))
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-4, atol=1e-5)
    for associative, sequential in zip(gradients[1], gradients[0]):
        np.testing.assert_allclose(associative, sequential, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("cls", LAYERS)
def test_the_step_mode_equals_the_sequence_mode_token_by_token(cls, scan):
    x, _ = _inputs(batch=3, steps=12)
    layer = cls(5, return_sequences=True, scan=scan)
    sequence = np.asarray(layer(x))
    state = np.zeros((3, 5), np.float32)
    for t in range(12):
        state = np.asarray(layer.step(x[:, t], state))
        np.testing.assert_allclose(state, sequence[:, t], atol=1e-5)


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("cls", LAYERS)
def test_padding_never_changes_an_output(cls, scan):
    x, _ = _inputs(batch=2, steps=9)
    layer = cls(4, return_sequences=True, return_state=True, scan=scan)
    short, short_state = layer(x, mask=np.ones((2, 9), bool))
    padded_x = np.concatenate([x, np.random.default_rng(5).normal(size=(2, 6, 6))], axis=1)
    padded_mask = np.arange(15)[None, :] < 9
    long, long_state = layer(padded_x.astype("float32"), mask=np.repeat(padded_mask, 2, 0))
    np.testing.assert_allclose(np.asarray(long)[:, :9], short, atol=1e-6)
    np.testing.assert_allclose(long_state, short_state, atol=1e-6)
    np.testing.assert_allclose(np.asarray(long)[:, 9:], np.repeat(short_state[:, None], 6, 1))


@pytest.mark.parametrize("cls", LAYERS)
def test_an_initial_state_continues_the_sequence(cls):
    x, _ = _inputs(batch=2, steps=10)
    for scan in SCANS:
        layer = cls(4, return_sequences=True, return_state=True, scan=scan)
        whole, _ = layer(x)
        _, middle = layer(x[:, :6])
        rest, _ = layer(x[:, 6:], initial_state=[middle])
        np.testing.assert_allclose(rest, np.asarray(whole)[:, 6:], atol=1e-5)


@pytest.mark.parametrize("cls", LAYERS)
def test_bidirectional_reads_the_real_tokens_backwards(cls):
    x, mask = _inputs(batch=3, steps=11)
    bi = keras.layers.Bidirectional(cls(4, return_sequences=True), merge_mode="concat")
    out = np.asarray(bi(x, mask=mask))
    assert out.shape == (3, 11, 8)
    row, length = 1, int(mask[1].sum())
    forward = np.asarray(bi.forward_layer(x[row : row + 1, :length]))[0]
    backward = np.asarray(bi.backward_layer(x[row : row + 1, :length]))[0][::-1]
    np.testing.assert_allclose(out[row, :length, :4], forward, atol=1e-5)
    np.testing.assert_allclose(out[row, :length, 4:], backward, atol=1e-5)
    assert np.all(out[row, length:] == 0)  # Bidirectional asks for zeros at padding
    with pytest.raises(ValueError, match="stateful"):
        cls(4, stateful=True)
    _, forward_state, backward_state = keras.layers.Bidirectional(cls(4, return_state=True))(
        x, mask=mask
    )
    assert forward_state.shape == backward_state.shape == (3, 4)


def test_config_round_trips_and_a_saved_model_reloads(tmp_path):
    layer = MinLSTM(7, return_sequences=True, go_backwards=True, dropout=0.1, scan="associative")
    config = layer.get_config()
    assert MinLSTM.from_config(config).get_config() == config
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(50, 8, mask_zero=True)(ids)
    x = keras.layers.Bidirectional(MinGRU(6, return_sequences=True))(x)
    x = MinLSTM(5)(x)
    model = keras.Model(ids, keras.layers.Dense(2)(x))
    batch = np.array([[3, 4, 5, 0, 0], [7, 8, 9, 10, 11]], np.int32)
    expected = np.asarray(model(batch))
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded(batch), expected, atol=1e-6)
    with pytest.raises(ValueError, match="scan"):
        MinGRU(4, scan="parallel")


def test_the_two_scans_are_the_same_function():
    rng = np.random.default_rng(3)
    log_a = -np.log1p(np.exp(rng.normal(size=(2, 150, 3)))).astype("float32")
    b = np.exp(rng.normal(size=(2, 150, 3))).astype("float32")
    h0 = np.exp(rng.normal(size=(2, 3))).astype("float32")
    z = 1.0 - np.exp(log_a)  # h = a h + b is the gated form with z = 1 - a, c = b / z
    time_major = np.asarray(gated_scan(*(np.swapaxes(v, 0, 1) for v in (z, b / z)), h0))
    sequential = np.swapaxes(time_major, 0, 1)
    associative = np.exp(np.asarray(log_linear_scan(log_a, np.log(b), np.log(h0), 16)))
    np.testing.assert_allclose(associative, sequential, rtol=1e-5)


@pytest.mark.parametrize("cls", LAYERS)
def test_a_tiny_model_learns_real_sentences(cls):
    with open(SST2_TRAIN, encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:301]
    texts, labels = [r[0] for r in rows], np.array([int(r[1]) for r in rows])
    vectorize = keras.layers.TextVectorization(max_tokens=800, output_sequence_length=30)
    vectorize.adapt(texts)
    ids = np.asarray(vectorize(texts))
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(800, 16, mask_zero=True)(inputs)
    x = keras.layers.Bidirectional(cls(16))(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    stop = stop_at_loss(0.1)
    # 6 epochs for seeds 0-3 of either layer where written; the cap is 3x that (conftest).
    model.fit(ids, labels, epochs=20, batch_size=32, verbose=0, callbacks=[stop])
    assert stop.reached, stop.describe()


@pytest.mark.parametrize("steps", [11, 12])  # 11: not a multiple of the loop's unrolling
def test_the_sequential_scans_gradient_is_the_recurrences_adjoint(steps):
    rng = np.random.default_rng(4)
    z = tf.constant(rng.uniform(0.0, 0.9, size=(steps, 2, 3)), tf.float32)  # time-major
    c = tf.constant(rng.normal(size=(steps, 2, 3)), tf.float32)
    h0 = tf.constant(rng.normal(size=(2, 3)), tf.float32)
    weights = tf.constant(rng.normal(size=(steps, 2, 3)), tf.float32)

    def plain_loop(z, c, h0):
        h, states = h0, []
        for t in range(steps):
            h = (1 - z[t]) * h + z[t] * c[t]
            states.append(h)
        return tf.stack(states)

    @tf.function(input_signature=[tf.TensorSpec((None, None, 3))] * 2 + [tf.TensorSpec((None, 3))])
    def scan_gradients(z, c, h0):  # lengths unknown while tracing, as in a SavedModel
        with tf.GradientTape() as tape:
            tape.watch([z, c, h0])
            loss = tf.reduce_sum(gated_scan(z, c, h0) * weights)
        return tape.gradient(loss, [z, c, h0])

    with tf.GradientTape() as tape:
        tape.watch([z, c, h0])
        loss = tf.reduce_sum(plain_loop(z, c, h0) * weights)
    for ours, theirs in zip(scan_gradients(z, c, h0), tape.gradient(loss, [z, c, h0])):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gated_scan(z, c, h0), plain_loop(z, c, h0), rtol=1e-6, atol=1e-6)


def test_the_candidate_activations_gradient_is_written_out_right():
    from seqtasks.models.linear_scans import g

    x = tf.constant(np.linspace(-6, 6, 49), tf.float32)  # both branches and 0 itself
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = g(x)
    s = _sigmoid(x.numpy().astype(np.float64))
    np.testing.assert_allclose(y, _g(x.numpy().astype(np.float64)), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(y, x), np.where(x >= 0, 1.0, s * (1 - s)), rtol=1e-5)


@pytest.mark.parametrize(
    "backend, device, expected",
    [("tensorflow", None, "sequential"), ("jax", "cpu", "sequential"),
     ("jax", "gpu", "associative"), ("jax", "tpu", "associative")],
)  # fmt: skip
def test_auto_scan_is_sequential_on_a_cpu_and_associative_on_an_accelerator(
    monkeypatch, backend, device, expected
):
    import sys
    import types

    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    monkeypatch.setitem(sys.modules, "jax", types.SimpleNamespace(default_backend=lambda: device))
    assert MinGRU(4).resolved_scan() == expected
    assert MinGRU(4, scan="associative").resolved_scan() == "associative"
