"""Resume: a training run killed with SIGKILL continues where it stopped when the
same command is run again, and ends with an uninterrupted run's metrics."""

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import keras
import pytest
from click.testing import CliRunner

from cli import cli
from conftest import ROOT, TINY
from seqtasks.errors import ConfigError
from seqtasks.training import lock_run, train
from tasks import get_recipe

# gru, seed 4, learning rate 0.01: validation loss gets worse after epoch 1 (the learning
# rate is cut, early stopping waits) and then improves, so the best weights are epoch 4's,
# trained after the resume.
SETTINGS = {**TINY, "epochs": 4, "patience": 10, "learning_rate": 0.01}
ARGS = [
    "--model",
    "gru",
    "--seed",
    "4",
    *[arg for key, value in SETTINGS.items() for arg in ("--set", f"{key}={value}")],
]


def cli_train(data, run_dir, export_dir):
    return [
        sys.executable,
        os.path.join(ROOT, "cli.py"),
        "train",
        "sentiment",
        "--data",
        data,
        "--run-dir",
        str(run_dir),
        "--export-dir",
        str(export_dir),
        "--json",
        *ARGS,
    ]


def history(run_dir):
    with open(os.path.join(run_dir, "history.csv"), encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_killed_run_resumes_and_matches_an_uninterrupted_run(tmp_path, sst2_sample):
    command = cli_train(sst2_sample, tmp_path / "run", tmp_path / "export")
    state = tmp_path / "run" / "resume" / "state.json"
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    done = json.loads(state.read_text())["epoch"]
    assert 1 <= done < 4 and not (tmp_path / "run" / "metrics.json").exists()

    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming {tmp_path / 'run'} at epoch {done + 1} of 4" in resumed.stderr
    assert f"Epoch {done + 1}/4" in resumed.stderr and "Epoch 1/4" not in resumed.stderr
    assert not (tmp_path / "run" / "resume").exists()  # removed once the run is finished

    uninterrupted = subprocess.run(
        cli_train(sst2_sample, tmp_path / "full", tmp_path / "full-export"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-2000:]
    assert "resuming" not in uninterrupted.stderr
    got, want = json.loads(resumed.stdout)["metrics"], json.loads(uninterrupted.stdout)["metrics"]
    assert got["epochs_run"] == want["epochs_run"] == 4
    assert got["best_epoch"] == want["best_epoch"] == 4
    for name in ("val_loss", "val_accuracy", "val_macro_f1"):
        assert got[name] == pytest.approx(want[name], abs=1e-4), name
    rows, expected = history(tmp_path / "run"), history(tmp_path / "full")
    assert [row["epoch"] for row in rows] == ["0", "1", "2", "3"]
    for row, want_row in zip(rows, expected):
        for key in want_row:
            assert float(row[key]) == pytest.approx(float(want_row[key]), abs=1e-4), (row, key)


class Interrupt(keras.callbacks.Callback):
    """Ctrl-C when epoch ``at`` (0-based) begins."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


def interrupted_run(data, **fields):
    """An unfinished run: trained in-process until Ctrl-C at the start of epoch 2."""
    recipe = get_recipe("sentiment")
    config = recipe.make_config(data=data, **{**SETTINGS, "epochs": 3}, **fields)
    with pytest.raises(KeyboardInterrupt):
        train(recipe, config, verbose=0, callbacks=[Interrupt(1)])
    return recipe, config


def test_other_settings_for_an_unfinished_run_dir_are_one_line_errors(tmp_path, sst2_sample):
    data = tmp_path / "reviews.tsv"
    data.write_text(open(sst2_sample, encoding="utf-8").read(), encoding="utf-8")
    run_dir, export_dir = str(tmp_path / "run"), str(tmp_path / "export")
    interrupted_run(str(data), run_dir=run_dir, export_dir=export_dir)
    base = ["train", "sentiment", "--data", str(data), "--run-dir", run_dir]
    base += ["--export-dir", export_dir, *ARGS[4:], "--epochs", "3"]

    result = CliRunner().invoke(cli, [*base, "--epochs", "5", "--set", "hidden_dim=6"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: config field 'run_dir': {run_dir} holds an unfinished run with other settings "
        "(epochs: 3 there, 5 here; hidden_dim: 4 there, 6 here); repeat them to resume it, "
        "or choose another --run-dir\n"
    )
    with open(data, "a", encoding="utf-8") as f:
        f.write("a fine film\t1\n")  # same path and options, other contents
    result = CliRunner().invoke(cli, base)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "other settings (data bytes: " in result.stderr
    assert (
        "data sha256: " in result.stderr and "data examples: 240 there, 241 here" in result.stderr
    )

    result = CliRunner().invoke(cli, [*base, "--no-resume"])
    assert result.exit_code == 2
    assert f"{run_dir} already holds a run; choose another --run-dir" in result.stderr
    assert json.load(open(tmp_path / "run" / "resume" / "state.json"))["epoch"] == 1


def test_same_command_resumes_the_newest_unfinished_run_and_no_resume_starts_fresh(
    tmp_path, sst2_sample, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # default run dirs: runs/sentiment-<time>
    export_dir = str(tmp_path / "export")
    recipe, config = interrupted_run(sst2_sample, export_dir=export_dir)
    (unfinished,) = os.listdir("runs")
    result = train(recipe, config, verbose=0, resume=False)
    assert result.run_dir != os.path.join("runs", unfinished)
    assert len(history(result.run_dir)) == 3
    assert not os.path.exists(os.path.join("runs", unfinished, "metrics.json"))

    lock = lock_run(os.path.join("runs", unfinished))  # as if another process trained it
    try:
        with pytest.raises(ConfigError, match="is in use by another training process"):
            train(recipe, dataclasses.replace(config, run_dir=os.path.join("runs", unfinished)))
    finally:
        lock.close()

    resumed = train(recipe, config, verbose=0)  # the same command again
    assert resumed.run_dir == os.path.join("runs", unfinished)
    assert resumed.metrics["epochs_run"] == 3
    assert [row["epoch"] for row in history(resumed.run_dir)] == ["0", "1", "2"]
