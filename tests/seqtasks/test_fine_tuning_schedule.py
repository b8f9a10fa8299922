"""ULMFiT's schedule: slanted triangular rates, per-group rates and gradual unfreezing,
checked on the weights each optimizer step moves."""

import keras
import numpy as np

from seqtasks.fine_tuning_schedule import (
    LayerwiseAdam,
    SlantedTriangular,
    layer_groups,
    variable_groups,
)
from seqtasks.models.classifier import build_text_classifier


def test_slanted_triangular_rises_to_the_peak_then_falls_to_a_32nd():
    schedule = SlantedTriangular(0.01, total_steps=100, cut_frac=0.1, ratio=32)
    rates = [float(schedule(t)) for t in (0, 5, 10, 55, 100, 150)]
    np.testing.assert_allclose(
        rates, [0.01 / 32, 0.01 * (1 + 0.5 * 31) / 32, 0.01, 0.01 * (1 + 0.5 * 31) / 32,
                0.01 / 32, 0.01 / 32], rtol=1e-5,
    )  # fmt: skip
    assert SlantedTriangular.from_config(schedule.get_config()).get_config() == (
        schedule.get_config()
    )


def _classifier():
    keras.utils.set_random_seed(0)
    return build_text_classifier(
        num_classes=2, vocabulary_size=30, sequence_length=10, kind="bilstm",
        embedding_dim=4, hidden_dim=3, num_layers=2,
    )  # fmt: skip


def test_layer_groups_run_from_the_embedding_to_the_head():
    model = _classifier()
    assert layer_groups(model) == [["embedding"], ["bilstm_0"], ["bilstm_1"], ["probabilities"]]
    paths, count = variable_groups(model)
    assert count == 4
    assert {paths[v.path] for v in model.get_layer("bilstm_1").weights} == {2}


def _moved_per_step(model, optimizer, steps):
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.integers(1, 30, (8, 10)).astype("int32"), rng.integers(0, 2, 8)
    names = [n for group in layer_groups(model) for n in group]
    moved = []
    for _ in range(steps):
        before = {n: [w.copy() for w in model.get_layer(n).get_weights()] for n in names}
        model.train_on_batch(x, y)
        moved.append(
            [
                n
                for n in names
                if any(
                    not np.array_equal(a, b)
                    for a, b in zip(before[n], model.get_layer(n).get_weights())
                )
            ]
        )
    return moved


def test_gradual_unfreezing_adds_one_group_per_stage_from_the_top():
    model = _classifier()
    paths, count = variable_groups(model)
    optimizer = LayerwiseAdam(paths, count, unfreeze_steps=2, learning_rate=0.05)
    moved = _moved_per_step(model, optimizer, 7)
    head, top, bottom, embedding = "probabilities", "bilstm_1", "bilstm_0", "embedding"
    assert moved == [
        [head], [head], [top, head], [top, head], [bottom, top, head], [bottom, top, head],
        [embedding, bottom, top, head],
    ]  # fmt: skip


def _first_steps(decay):
    """The largest weight change of each group's first matrix after one step."""
    model = _classifier()
    paths, count = variable_groups(model)
    names = ("embedding", "bilstm_1", "probabilities")
    before = {n: model.get_layer(n).get_weights()[0].copy() for n in names}
    model.compile(
        optimizer=LayerwiseAdam(paths, count, layer_lr_decay=decay, learning_rate=0.01),
        loss="sparse_categorical_crossentropy",
    )
    rng = np.random.default_rng(1)
    model.train_on_batch(rng.integers(1, 30, (8, 10)).astype("int32"), rng.integers(0, 2, 8))
    return {n: np.abs(model.get_layer(n).get_weights()[0] - before[n]).max() for n in names}


def test_each_group_below_the_head_learns_at_the_rate_above_divided_by_the_decay():
    one_rate, decayed = _first_steps(1.0), _first_steps(4.0)
    # Adam's first step is proportional to the learning rate (same gradients: same seed)
    np.testing.assert_allclose(decayed["probabilities"] / one_rate["probabilities"], 1.0, rtol=1e-3)
    np.testing.assert_allclose(decayed["bilstm_1"] / one_rate["bilstm_1"], 1 / 4, rtol=1e-3)
    np.testing.assert_allclose(decayed["embedding"] / one_rate["embedding"], 1 / 64, rtol=1e-3)
