"""`build_training_state`: metrics', loss's and optimizer's variables exist before `fit`, so
Keras traces its train step once (a trace that creates variables is traced again)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from seqtasks.training.fitting import build_training_state


def _model_and_data():
    keras.utils.set_random_seed(0)
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(50, 8, mask_zero=True)(tokens)
    x = keras.layers.GRU(4)(x)
    model = keras.Model(tokens, keras.layers.Dense(3)(x))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["sparse_categorical_accuracy"],
    )
    rng = np.random.default_rng(0)
    x = rng.integers(1, 50, size=(12, 7)).astype("int32")
    y = rng.integers(0, 3, size=(12,)).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).padded_batch(4, padded_shapes=([None], []))
    return model, dataset


def _variable_count(model) -> int:
    return len(model.variables) + len(model.optimizer.variables) + len(model.metrics_variables)


def test_after_it_a_train_step_creates_no_variables():
    model, dataset = _model_and_data()
    assert dataset.element_spec[0].shape.as_list() == [None, None]
    build_training_state(model, dataset)
    assert model.optimizer.built
    before = _variable_count(model)
    x, y = next(iter(dataset))
    model.train_on_batch(x, y)
    assert _variable_count(model) == before


def test_without_it_the_first_step_creates_them():
    model, dataset = _model_and_data()
    assert not model.optimizer.built
    before = _variable_count(model)
    x, y = next(iter(dataset))
    model.train_on_batch(x, y)
    assert model.optimizer.built and _variable_count(model) > before


def test_training_with_it_matches_training_without_it():
    losses = []
    for prebuild in (True, False):
        model, dataset = _model_and_data()
        if prebuild:
            build_training_state(model, dataset)
        history = model.fit(dataset, epochs=2, verbose=0, shuffle=False)
        losses.append(history.history["loss"])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-6)
