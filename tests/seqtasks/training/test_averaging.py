"""Checkpoint averaging (``average_last`` / ``--average-last``): which epochs are kept and
averaged, the exported weights are their mean, and a resumed run averages across the
interruption."""

import os

import keras
import numpy as np
import pytest

from conftest import TINY
from seqtasks.training import train
from seqtasks.training.averaging import (
    AVERAGING_DIR,
    EpochSnapshots,
    average_snapshots,
    averaged_epochs,
    saved_epochs,
)
from tasks import get_recipe

SETTINGS = {**TINY, "epochs": 4, "patience": 10, "learning_rate": 0.01, "model": "gru", "seed": 4}


class RecordWeights(keras.callbacks.Callback):
    """Every epoch's weights, as ``fit`` leaves them at the epoch's end."""

    def __init__(self):
        super().__init__()
        self.weights: dict[int, list[np.ndarray]] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.weights[epoch + 1] = [np.array(w) for w in self.model.get_weights()]


class Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt


def _mean(records, epochs):
    return [np.mean([records[e][i] for e in epochs], axis=0) for i in range(len(records[1]))]


def _run_config(tmp_path, data, average_last):
    recipe = get_recipe("sentiment")
    config = recipe.make_config(
        data=data,
        average_last=average_last,
        run_dir=str(tmp_path / "run"),
        export_dir=str(tmp_path / "export"),
        **SETTINGS,
    )
    return recipe, config


def _tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    return model


def test_snapshots_older_than_the_window_before_the_best_are_removed(tmp_path):
    model = _tiny_model()
    callback = EpochSnapshots(str(tmp_path), count=2)
    callback.set_model(model)
    kept = []
    for epoch, loss in enumerate([3.0, 2.0, 2.5, 1.0, 1.5, 1.7]):
        callback.on_epoch_end(epoch, {"val_loss": loss})
        kept.append(saved_epochs(str(tmp_path)))
    # best 1, 2, 2, 4, 4, 4: epochs <= best - 2 go
    assert kept == [[1], [1, 2], [1, 2, 3], [3, 4], [3, 4, 5], [3, 4, 5, 6]]
    assert averaged_epochs(4, 2, kept[-1]) == [3, 4]
    assert averaged_epochs(2, 5, [1, 2, 3]) == [1, 2]  # a shorter run averages what it has
    assert not [f for f in os.listdir(tmp_path) if f.startswith("tmp-")]


def test_the_averaged_weights_are_the_mean_of_the_snapshots(tmp_path):
    model = _tiny_model()
    callback = EpochSnapshots(str(tmp_path), count=3)
    callback.set_model(model)
    rng = np.random.default_rng(0)
    records = {}
    for epoch in range(3):
        model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.weights])
        records[epoch + 1] = model.get_weights()
        callback.on_epoch_end(epoch, {"val_loss": 1.0 - epoch})
    average_snapshots(model, str(tmp_path), [2, 3])
    for got, want in zip(model.get_weights(), _mean(records, [2, 3])):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="at least one epoch"):
        average_snapshots(model, str(tmp_path), [])


def test_a_run_exports_the_mean_of_the_last_epochs_ending_at_the_best(tmp_path, sst2_sample):
    from seqtasks.inference import load_keras_model

    recipe, config = _run_config(tmp_path, sst2_sample, average_last=3)
    record = RecordWeights()
    result = train(recipe, config, verbose=0, callbacks=[record])
    best = result.metrics["best_epoch"]
    assert result.metrics["averaged_epochs"] == list(range(max(1, best - 2), best + 1))
    mean = _mean(record.weights, result.metrics["averaged_epochs"])
    for got, want in zip(result.model.get_weights(), mean):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    exported = load_keras_model(os.path.join(result.export_path, "assets.extra", "model.keras"))
    for got, want in zip(exported.get_weights(), result.model.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert not os.path.exists(tmp_path / "run" / AVERAGING_DIR)


def test_a_resumed_run_averages_the_epochs_before_the_interruption(tmp_path, sst2_sample):
    recipe, config = _run_config(tmp_path, sst2_sample, average_last=4)
    first = RecordWeights()
    with pytest.raises(KeyboardInterrupt):
        train(recipe, config, verbose=0, callbacks=[first, Interrupt()])
    assert saved_epochs(str(tmp_path / "run" / AVERAGING_DIR)) == [1]
    rest = RecordWeights()
    result = train(recipe, config, verbose=0, callbacks=[rest], resume=True)
    averaged = result.metrics["averaged_epochs"]
    assert averaged[0] == 1 and averaged[-1] == result.metrics["best_epoch"]
    records = {**first.weights, **rest.weights}
    for got, want in zip(result.model.get_weights(), _mean(records, averaged)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
