"""Data-parallel training (seqtasks/distribute.py): two workers on loopback, mirrored, errors."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ROOT, SST2_TRAIN, TINY, head_lines
from seqtasks.distribute import choose, read_tf_config
from seqtasks.errors import ConfigError

# One worker: trains the tiny sentiment model with --strategy given on the command line and
# saves the weights it ends with (the chief's export holds the same weights).
WORKER = """
import json, logging, os, sys
sys.path.insert(0, {root!r})
logging.basicConfig(level=logging.INFO, force=True)
strategy, data, out = sys.argv[1:4]
if strategy == "mirrored":  # two CPU devices in this process
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
from seqtasks.training import train
from tasks import get_recipe
recipe = get_recipe("sentiment")
config = recipe.make_config(
    data=data, export_dir=os.path.join(out, "export"), run_dir=os.path.join(out, "run"),
    **{tiny!r}
)

class StopAtSecondEpoch(keras.callbacks.Callback):  # like Ctrl-C, after epoch 1 is saved
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1 and os.environ.get("STOP_AT_SECOND_EPOCH"):
            raise KeyboardInterrupt


try:
    result = train(recipe, config, verbose=0, strategy=strategy, callbacks=[StopAtSecondEpoch()])
except KeyboardInterrupt:
    print("INTERRUPTED")
    sys.exit(0)
index = result.metrics["distribution"]["worker_index"]
np.savez(os.path.join(out, f"weights-{{index}}.npz"), *result.model.get_weights())
print("RESULT", json.dumps({{"export": result.export_path, "run_dir": result.run_dir,
                            "metrics": result.metrics}}))
"""


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def worker_script(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distribute")
    tiny = {**TINY, "epochs": 2, "batch_size": 16}
    script = folder / "worker.py"
    script.write_text(WORKER.format(root=ROOT, tiny=tiny))
    data = head_lines(SST2_TRAIN, 321, str(folder / "sst2.tsv"))
    return str(script), data


def run_workers(
    commands: list[tuple[list[str], dict]], timeout: float = 300, returncode: int | None = 0
) -> list[tuple]:
    """Start every ``(argv, env)`` at once; wait for all; their (stdout, stderr).

    Asserts each exit status is ``returncode`` (None: any non-zero status).
    """
    processes = [
        subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
        )
        for argv, env in commands
    ]
    outputs = []
    try:
        for p in processes:
            out, err = p.communicate(timeout=timeout)
            if returncode is None:
                assert p.returncode != 0, out[-3000:]
            else:
                assert p.returncode == returncode, err[-3000:]
            outputs.append((out, err))
    finally:
        for p in processes:
            p.kill()
    return outputs


def result_of(stdout: str) -> dict:
    line = next(line for line in stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


@pytest.mark.slow  # trains in worker processes
def test_two_workers_on_loopback_resume_and_end_with_identical_weights_and_one_export(
    worker_script, tmp_path
):
    script, data = worker_script

    def launch(worker_folder=tmp_path, returncode=0, **extra_env):
        ports = free_ports(2)
        cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
        commands = []
        for index in range(2):
            scratch = tmp_path / f"tmp-{index}"
            scratch.mkdir(exist_ok=True)
            task = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            env = {
                **os.environ,
                "TF_CONFIG": json.dumps(task),
                "TMPDIR": str(scratch),  # where a worker other than the chief keeps its files
                "TF_CPP_MIN_LOG_LEVEL": "2",
                **extra_env,
            }
            out = tmp_path if index == 0 else worker_folder
            commands.append(([sys.executable, script, "multi-worker", data, str(out)], env))
        return run_workers(commands, returncode=returncode)

    # Interrupted when epoch 2 begins: epoch 1's state is saved by the chief only.
    for out, _ in launch(STOP_AT_SECOND_EPOCH="1"):
        assert "INTERRUPTED" in out
    state = json.loads((tmp_path / "run" / "resume" / "state.json").read_text())
    assert state["epoch"] == 1
    assert not os.path.exists(tmp_path / "export")
    assert os.listdir(tmp_path / "tmp-1") == []  # the worker's temporary run dir is gone

    # A worker that cannot see the chief's --run-dir would start over: refused by all.
    refused = launch(worker_folder=tmp_path / "elsewhere", returncode=None)
    for (_, err), (index, epoch) in zip(refused, [(0, 2), (1, 1)]):
        assert (
            f"config field 'run_dir': worker {index} starts at epoch {epoch} with other "
            "weights than the rest of the cluster; to resume a multi-worker run, every worker "
            "needs the chief's --run-dir (a shared folder)"
        ) in err
    assert not os.path.exists(tmp_path / "export")

    # The same command again: both workers continue from the chief's saved state.
    (chief_out, chief_err), (worker_out, worker_err) = launch()
    chief, worker = result_of(chief_out), result_of(worker_out)
    for err in (chief_err, worker_err):
        assert f"resuming {tmp_path / 'run'} at epoch 2 of 2" in err

    first = np.load(tmp_path / "weights-0.npz")
    second = np.load(tmp_path / "weights-1.npz")
    assert len(first.files) == len(second.files) > 0
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key])  # bit for bit

    # Exactly one export, one run directory, written by the chief (worker 0).
    assert sorted(os.listdir(tmp_path / "export")) == ["1"]
    assert chief["export"] == str(tmp_path / "export" / "1")
    assert chief["run_dir"] == str(tmp_path / "run")
    assert worker == {
        "export": None,
        "run_dir": None,
        "metrics": {
            "distribution": {
                "strategy": "multi-worker",
                "workers": 2,
                "worker_index": 1,
                "replicas": 2,
            }
        },
    }
    assert os.listdir(tmp_path / "tmp-1") == []  # the worker's temporary run dir is gone
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["distribution"]["workers"] == 2 and metrics["epochs_run"] == 2
    assert json.loads((tmp_path / "run" / "config.json").read_text())["distribution"] == {
        "strategy": "multi-worker",
        "workers": 2,
        "worker_index": 0,
        "replicas": 2,
    }
    # The loop logged loss and val_loss for both epochs; the validation loss is the same
    # quantity the recipe reports for the restored best epoch.
    with open(tmp_path / "run" / "history.csv", encoding="utf-8") as f:
        history = list(csv.DictReader(f))
    assert [row["epoch"] for row in history] == ["0", "1"]
    val_losses = [float(row["val_loss"]) for row in history]
    assert all(float(row["loss"]) > 0 for row in history)
    assert metrics["val_loss"] == pytest.approx(min(val_losses), rel=1e-4)
    # The export serves the trained weights.
    from seqtasks.export import read_metadata
    from tasks import get_recipe

    version = chief["export"]
    predictions = get_recipe("sentiment").predict(
        version, read_metadata(version), ["a gorgeous, witty film", "dull"]
    )
    assert len(predictions) == 2 and all(p["label"] in ("0", "1") for p in predictions)


@pytest.mark.slow  # trains in worker processes
def test_mirrored_strategy_trains_on_two_devices_and_exports(worker_script, tmp_path):
    script, data = worker_script
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    ((out, _),) = run_workers([([sys.executable, script, "mirrored", data, str(tmp_path)], env)])
    result = result_of(out)
    assert result["metrics"]["distribution"] == {
        "strategy": "mirrored",
        "workers": 1,
        "worker_index": 0,
        "replicas": 2,
    }
    assert result["export"] == str(tmp_path / "export" / "1")
    assert 0 <= result["metrics"]["val_accuracy"] <= 1


@pytest.mark.parametrize(
    "tf_config, message",
    [
        ("{not json", 'environment variable TF_CONFIG: not valid; expected {"cluster"'),
        (
            json.dumps(
                {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}
            ),
            "environment variable TF_CONFIG: task index 2 is out of range for 2 worker address(es)",
        ),
        (
            json.dumps(
                {"cluster": {"worker": ["a:1"], "ps": ["c:3"]}, "task": {"type": "ps", "index": 0}}
            ),
            "environment variable TF_CONFIG: task type 'ps' is not supported; expected 'worker'",
        ),
    ],
)
def test_bad_tf_config_is_a_one_line_error(monkeypatch, tf_config, message):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ConfigError) as error:
        read_tf_config()
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_tf_config_counts_chief_and_workers(monkeypatch):
    cluster = {"chief": ["a:1"], "worker": ["b:2", "c:3"]}
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    )
    assert read_tf_config() == (3, 2)
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}})
    )
    assert read_tf_config() == (3, 0)
    monkeypatch.delenv("TF_CONFIG")
    assert read_tf_config() == (1, 0)
    assert choose("auto").name == "none"  # one process, no GPU: Keras' default


def test_multi_worker_without_tf_config_is_a_cli_error(monkeypatch, sst2_sample, tmp_path):
    from cli import cli

    monkeypatch.delenv("TF_CONFIG", raising=False)
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "sentiment",
            "--data",
            sst2_sample,
            "--strategy",
            "multi-worker",
            "--run-dir",
            str(tmp_path / "run"),
            "--export-dir",
            str(tmp_path / "export"),
        ],
    )
    assert result.exit_code == 2
    assert result.output.strip().startswith(
        "error: --strategy multi-worker: set TF_CONFIG in every worker's environment to a "
        "cluster of two or more tasks"
    )
    assert not os.path.exists(tmp_path / "run") and not os.path.exists(tmp_path / "export")
