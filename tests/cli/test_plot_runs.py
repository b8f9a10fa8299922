"""`cli.py plot-runs`: several runs' curves in one PNG; one-line errors for folders that
are not runs or have no history; plot-attention and plot-captions keep Keras'
UserWarnings off stderr."""

import json
import os
import warnings

import matplotlib.image
import pytest
from click.testing import CliRunner

from cli import cli
from conftest import assert_one_line_error

HISTORY = "epoch,loss,val_loss,accuracy,val_accuracy\n0,0.7,0.69,0.5,0.52\n1,0.6,0.65,0.6,0.58\n"


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def make_run(folder, history=HISTORY, metrics=None):
    os.makedirs(folder)
    (folder / "config.json").write_text('{"recipe": "sentiment"}')
    if history is not None:
        (folder / "history.csv").write_text(history)
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return str(folder)


def test_plot_runs_overlays_two_runs(tmp_path):
    first = make_run(tmp_path / "runs" / "a", metrics={"best_epoch": 2})
    second = make_run(tmp_path / "runs" / "b", HISTORY.replace("0.65", "0.61"))  # unfinished
    out = tmp_path / "both.png"
    result = run("plot-runs", first, second, "--output", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {out}\n"
    two_panels = matplotlib.image.imread(out)
    result = run("plot-runs", first, second, "-o", str(out), "--metric", "accuracy")
    assert result.exit_code == 0, result.output
    assert matplotlib.image.imread(out).shape[1] < two_panels.shape[1]


def test_plot_runs_errors_are_one_line(tmp_path):
    good = make_run(tmp_path / "good")
    out = str(tmp_path / "x.png")
    result = run("plot-runs", good, str(tmp_path / "missing"), "-o", out)
    assert_one_line_error(result, "missing: no such folder")
    os.makedirs(tmp_path / "plain")
    result = run("plot-runs", good, str(tmp_path / "plain"), "-o", out)
    assert_one_line_error(result, "plain: not a run directory (no config.json)")
    result = run("plot-runs", make_run(tmp_path / "new", history=None), "-o", out)
    assert_one_line_error(result, "new: no history.csv (no epoch finished yet)")
    result = run("plot-runs", good, "-o", out, "--metric", "bleu")
    assert_one_line_error(result, "no run has the metric 'bleu'; they have: loss, accuracy")
    assert not os.path.exists(out)


class WarningTask:
    """Stands in for an export's recipe: its plots make Keras warn, as a real model's
    attention did (a softmax over one position)."""

    name = "translation"

    def _warn(self):
        import keras
        import numpy as np

        keras.ops.softmax(np.ones((2, 1), "float32"), axis=-1)  # Keras: UserWarning
        warnings.warn("a warning of our own", stacklevel=1)  # not the frameworks': still shown

    def plot_attention(self, version_dir, metadata, sentence, output):
        self._warn()
        return {"translation": "ein Hund"}

    def plot_captions(self, version_dir, metadata, images, output, attention):
        self._warn()
        return {"captions": [{"image": images[0], "caption": "a dog"}]}


@pytest.mark.parametrize("command", ["plot-attention", "plot-captions"])
def test_plot_commands_keep_framework_warnings_off_stderr(command, monkeypatch, tmp_path):
    import seqtasks.commands.plots as plots

    monkeypatch.setattr(plots, "_load_export", lambda model_dir: ("v", {}, WarningTask()))
    monkeypatch.setattr(plots, "require_command", lambda *args: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(command, "model", "x.jpg", "-o", str(tmp_path / "a.png"))
    assert result.exit_code == 0, result.output
    assert [str(w.message) for w in caught] == ["a warning of our own"]
