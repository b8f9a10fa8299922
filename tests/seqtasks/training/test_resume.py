"""Resume: a training run killed with SIGKILL continues where it stopped when the
same command is run again, and ends with an uninterrupted run's metrics."""

import csv
import dataclasses
import json
import logging
import os
import shutil
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
from seqtasks.export import read_metadata
from seqtasks.training import finetune, lock_run, run_differences, train
from tasks import get_recipe

# gru, seed 4, learning rate 0.01, patience 10: all 4 epochs run; on the machine this was
# written on, validation loss got worse after epoch 1 (the learning rate is cut, early
# stopping waits) and then improved. The test asserts only that the resumed run repeats
# the uninterrupted one, whatever the trajectory (it differs between CPUs).
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
    assert got["best_epoch"] == want["best_epoch"]
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
    with pytest.raises(KeyboardInterrupt):  # resume=False: a new run, also stopped at epoch 2
        train(recipe, config, verbose=0, resume=False, callbacks=[Interrupt(1)])
    fresh = sorted(set(os.listdir("runs")) - {unfinished})
    assert len(fresh) == 1, os.listdir("runs")
    assert len(history(os.path.join("runs", fresh[0]))) == 1
    assert not os.path.exists(os.path.join("runs", unfinished, "metrics.json"))
    assert len(history(os.path.join("runs", unfinished))) == 1  # left as it was

    lock = lock_run(os.path.join("runs", unfinished))  # as if another process trained it
    try:
        with pytest.raises(ConfigError, match="is in use by another training process"):
            train(recipe, dataclasses.replace(config, run_dir=os.path.join("runs", unfinished)))
    finally:
        lock.close()

    resumed = train(recipe, config, verbose=0)  # the same command again: the newest one
    assert resumed.run_dir == os.path.join("runs", fresh[0])
    assert resumed.metrics["epochs_run"] == 3
    assert [row["epoch"] for row in history(resumed.run_dir)] == ["0", "1", "2"]
    assert len(history(os.path.join("runs", unfinished))) == 1


def test_interrupted_finetune_resumes_with_the_same_command(
    tmp_path, trained, sst2_sample, monkeypatch, caplog
):
    monkeypatch.chdir(tmp_path)  # default run dirs: runs/sentiment-finetune-<time>
    model_dir = shutil.copytree(os.path.dirname(trained.export_path), tmp_path / "model")
    recipe, version_dir = get_recipe("sentiment"), str(model_dir / "1")
    metadata = read_metadata(version_dir)
    config = recipe.finetune_config(
        metadata, data=sst2_sample, epochs=3, learning_rate=1e-3, export_dir=str(model_dir)
    )
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C when epoch 2 begins
        finetune(recipe, config, version_dir, metadata, freeze="embeddings", verbose=0,
                 callbacks=[Interrupt(1)])  # fmt: skip
    (name,) = os.listdir("runs")
    unfinished = os.path.join("runs", name)
    assert name.startswith("sentiment-finetune-")
    assert json.load(open(os.path.join(unfinished, "resume", "state.json")))["epoch"] == 1

    # Matched on the source version and --freeze too; `train` never resumes it.
    settings = json.loads(json.dumps(config.to_dict()))
    source = {"finetuned_from": os.path.abspath(version_dir), "freeze": "embeddings"}
    assert run_differences(unfinished, "sentiment-finetune", settings, None, source) == []
    assert run_differences(
        unfinished, "sentiment-finetune", settings, None, {**source, "freeze": "none"}
    ) == ["freeze: 'embeddings' there, 'none' here"]
    assert run_differences(unfinished, "sentiment", settings)[0].startswith("recipe: ")

    cli_args = ["finetune", str(model_dir), "--data", sst2_sample, "--run-dir", unfinished]
    result = CliRunner().invoke(cli, [*cli_args, "--epochs", "3", "--no-resume"])
    assert result.exit_code == 2
    assert f"{unfinished} already holds a run; choose another --run-dir" in result.stderr
    result = CliRunner().invoke(cli, [*cli_args, "--epochs", "4", "--learning-rate", "1e-3"])
    assert result.exit_code == 2 and "(epochs: 3 there, 4 here)" in result.stderr

    with caplog.at_level(logging.INFO, logger="seqtasks.training"):
        resumed = finetune(recipe, config, version_dir, metadata, freeze="embeddings", verbose=0)
    assert resumed.run_dir == unfinished
    assert f"resuming {unfinished} at epoch 2 of 3" in caplog.text
    assert resumed.metrics["epochs_run"] == 3
    assert [row["epoch"] for row in history(unfinished)] == ["0", "1", "2"]
    assert resumed.export_path == str(model_dir / "2")
    assert read_metadata(resumed.export_path)["finetuned_from"] == os.path.abspath(version_dir)
    assert not os.path.exists(os.path.join(unfinished, "resume"))


def test_a_run_from_before_a_new_field_resumes_with_its_absent_value(tmp_path):
    """A field the run's config.json lacks (added to seqtasks since) counts as the value it
    declares for runs recorded before it (``absent``), not as today's default."""
    recipe = get_recipe("sentiment")
    config = recipe.make_config(data="reviews.csv", model="bimingru")
    settings = json.loads(json.dumps(config.to_dict()))
    older = {key: value for key, value in settings.items() if key != "conv_kernel_size"}
    (tmp_path / "config.json").write_text(json.dumps({"recipe": "sentiment", "config": older}))
    absent = config.absent_values()
    assert absent == {"conv_kernel_size": 0}  # declared per field, not every default
    assert run_differences(str(tmp_path), "sentiment", settings, absent=absent) == []
    changed = {**settings, "conv_kernel_size": 3}
    assert run_differences(str(tmp_path), "sentiment", changed, absent=absent) == [
        "conv_kernel_size: 0 there (not recorded: the run predates the field), 3 here"
    ]
    no_model = {key: value for key, value in older.items() if key != "model"}
    (tmp_path / "config.json").write_text(json.dumps({"recipe": "sentiment", "config": no_model}))
    assert run_differences(str(tmp_path), "sentiment", settings, absent=absent) == [
        "model: None there, 'bimingru' here"  # no absent value: still a difference
    ]
    (tmp_path / "config.json").write_text(json.dumps({"recipe": "sentiment", "config": older}))
    assert run_differences(str(tmp_path), "sentiment", settings) == [
        "conv_kernel_size: None there, 0 here"  # without the absent values: a difference
    ]
