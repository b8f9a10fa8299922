"""seqtasks/plots.py: training curves from a history, several runs overlaid, and every
PNG written atomically with the process umask's permissions (not mkstemp's 0600)."""

import os

import matplotlib.image
import numpy as np
import pytest

from seqtasks.curves import compare_runs, metric_names, read_history, training_curves
from seqtasks.plots import attention_heatmap, caption_grid

HISTORY = (
    "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\n"
    "0,0.50,0.001,0.69,0.52,0.68\n"
    "1,0.61,0.001,0.62,0.58,0.64\n"
    "2,0.70,0.0005,0.55,0.57,0.66\n"
)


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield 0o640  # what a plain open() makes under it
    os.umask(previous)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_read_history_is_one_based_and_names_loss_first(tmp_path):
    history = read_history(write(tmp_path / "history.csv", HISTORY + "3,NA,0.0005,0.5,,0.7\n"))
    np.testing.assert_array_equal(history["epoch"], [1, 2, 3, 4])
    np.testing.assert_allclose(history["val_loss"], [0.68, 0.64, 0.66, 0.7])
    assert np.isnan(history["accuracy"][3]) and np.isnan(history["val_accuracy"][3])
    assert metric_names(history) == ["loss", "accuracy"]  # learning_rate is no metric
    assert metric_names(history, {"val_bleu": 1, "epoch": 0}) == ["loss", "accuracy", "bleu"]
    with pytest.raises(ValueError, match="no finished epoch"):
        read_history(write(tmp_path / "empty.csv", "epoch,loss,val_loss\n"))


def test_training_curves_draw_a_png_with_the_umask(tmp_path, umask_027):
    out = tmp_path / "sub" / "curves.png"
    assert training_curves(write(tmp_path / "h.csv", HISTORY), str(out), best_epoch=2) == str(out)
    picture = matplotlib.image.imread(out)
    assert picture.shape[2] in (3, 4) and picture.shape[1] > picture.shape[0]  # two panels
    assert os.stat(out).st_mode & 0o777 == umask_027
    assert os.listdir(out.parent) == ["curves.png"]  # no temporary file left


def test_compare_runs_overlays_runs_and_checks_the_metric(tmp_path, umask_027):
    other = HISTORY.replace("0.68", "0.60").replace("0.64", "0.50")
    runs = {"a": write(tmp_path / "a.csv", HISTORY), "b": write(tmp_path / "b.csv", other)}
    out = str(tmp_path / "runs.png")
    compare_runs(runs, out, best_epochs={"a": 2, "b": None})
    both = matplotlib.image.imread(out)
    assert os.stat(out).st_mode & 0o777 == umask_027
    compare_runs(runs, out, metric="val_loss")  # one panel: narrower
    assert matplotlib.image.imread(out).shape[1] < both.shape[1]
    with pytest.raises(ValueError, match="no run has the metric 'bleu'; they have: loss, accuracy"):
        compare_runs(runs, out, metric="bleu")
    with pytest.raises(ValueError, match="no runs"):
        compare_runs({}, out)


def test_attention_heatmap_and_caption_grid_follow_the_umask(tmp_path, umask_027):
    heatmap = attention_heatmap(
        np.full((2, 3), 1 / 3), ["a", "b", "c"], ["x", "[END]"], str(tmp_path / "att.png")
    )
    grid = caption_grid([np.zeros((8, 8, 3), np.uint8)], ["a cat"], str(tmp_path / "grid.png"))
    for path in (heatmap, grid):
        assert os.stat(path).st_mode & 0o777 == umask_027, path
        assert matplotlib.image.imread(path).ndim == 3
