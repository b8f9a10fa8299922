"""Ctrl-C during training (seqtasks/training/interrupt.py): a real SIGINT stops a real
`cli.py train` process at the next batch, it says what its run dir keeps and how to
resume, the same command resumes; a second Ctrl-C quits at once; curves.png."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import keras
import numpy as np
import pytest

from conftest import ROOT, SST2_TRAIN, TINY, head_lines
from seqtasks.training import StopOnInterrupt, TrainingInterrupted, train
from seqtasks.training import interrupt as interrupt_module
from tasks import get_recipe

LOOSE_BOUND_S = 15  # SIGINT to exit; measured 0.05-0.1 s on a 2-core CPU
EPOCHS = 3
# batch size 2 over 540 training examples: 270 batches, a few seconds an epoch.
ARGS = ["--model", "gru", "--batch-size", "2", "--epochs", str(EPOCHS), "--seed", "3"]
ARGS += [f"--set={k}={v}" for k, v in TINY.items() if k not in ("epochs", "batch_size")]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return head_lines(SST2_TRAIN, 601, str(tmp_path_factory.mktemp("data") / "sst2.tsv"))


def command(data, run_dir, export_dir):
    return [
        sys.executable, os.path.join(ROOT, "cli.py"), "train", "sentiment", "--data", data,
        "--run-dir", str(run_dir), "--export-dir", str(export_dir), *ARGS,
    ]  # fmt: skip


class Stderr:
    """A process's stderr, read line by line as it comes."""

    def __init__(self, proc):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc):
        for line in proc.stderr:
            self.lines.append(line)

    def wait_for(self, text, proc, timeout):
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(self.lines)
            time.sleep(0.01)

    @property
    def text(self):
        self.thread.join(timeout=10)
        return "".join(self.lines)


def start_and_wait_for_second_epoch(cmd, run_dir, cwd):
    """Start ``cmd`` and return once epoch 1's resume state is saved (written last at an
    epoch's end, by a rename: epoch 2 has begun)."""
    proc = subprocess.Popen(cmd, cwd=cwd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    stderr = Stderr(proc)
    state = run_dir / "resume" / "state.json"
    deadline = time.monotonic() + 240
    while not state.exists():
        assert proc.poll() is None and time.monotonic() < deadline, stderr.text[-3000:]
        time.sleep(0.01)
    return proc, stderr


def test_ctrl_c_stops_at_the_next_batch_says_what_is_kept_and_the_same_command_resumes(
    tmp_path, sample
):
    run_dir = tmp_path / "run"
    cmd = command(sample, run_dir, tmp_path / "export")
    proc, stderr = start_and_wait_for_second_epoch(cmd, run_dir, tmp_path)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    seconds = time.monotonic() - sent
    print(f"SIGINT to exit: {seconds:.2f} s")
    text = stderr.text
    assert proc.returncode == 130, text[-3000:]
    assert seconds < LOOSE_BOUND_S, text[-3000:]
    state = json.loads((run_dir / "resume" / "state.json").read_text())
    kept = state["epoch"]
    assert 1 <= kept < EPOCHS  # the partial epoch is not saved
    assert "stopping after this batch... (Ctrl-C again to quit at once)" in text
    assert (
        f"interrupted: {run_dir} keeps epoch {kept} of {EPOCHS}; run the same command again "
        f"to resume at epoch {kept + 1}\n"
    ) in text
    assert (run_dir / "resume" / state["weights"]).exists()
    assert (run_dir / "history.csv").read_text().count("\n") == 1 + kept
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "curves.png").exists()
    assert os.listdir(run_dir / "logs" / "train")  # TensorBoard events flushed, not lost

    resumed = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {run_dir} at epoch {kept + 1} of {EPOCHS}" in resumed.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == EPOCHS
    assert (run_dir / "history.csv").read_text().count("\n") == 1 + EPOCHS
    assert (run_dir / "curves.png").exists()


def test_a_second_ctrl_c_quits_at_once_with_status_130_and_the_state_intact(tmp_path, sample):
    run_dir = tmp_path / "run"
    cmd = command(sample, run_dir, tmp_path / "export")
    proc, stderr = start_and_wait_for_second_epoch(cmd, run_dir, tmp_path)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stderr.wait_for("stopping after this batch", proc, timeout=30)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    seconds = time.monotonic() - sent
    print(f"two SIGINTs to exit: {seconds:.2f} s")
    text = stderr.text
    assert proc.returncode == 130, text[-3000:]
    assert seconds < LOOSE_BOUND_S
    # Whichever came first, the stop at the batch or the second Ctrl-C: one of the two.
    assert "interrupted again: quitting now; " in text or "interrupted: " in text, text
    assert "Traceback" not in text
    state = json.loads((run_dir / "resume" / "state.json").read_text())
    assert state["epoch"] >= 1 and (run_dir / "resume" / state["weights"]).exists()
    assert not [name for name in os.listdir(run_dir / "resume") if name.startswith("tmp-")]


# --- in-process: the handler and the callback ---------------------------------------------


class ExitCalled(Exception):
    pass


def test_first_ctrl_c_stops_at_the_next_batch_and_a_second_one_exits(monkeypatch, tmp_path):
    (tmp_path / "resume").mkdir()
    (tmp_path / "resume" / "state.json").write_text('{"epoch": 2}')
    statuses = []

    def exit_now(status):
        statuses.append(status)
        raise ExitCalled

    monkeypatch.setattr(interrupt_module, "exit_now", exit_now)

    class Stream:
        text = ""

        def write(self, text):
            Stream.text += text

        def flush(self):
            pass

    stop = StopOnInterrupt(str(tmp_path), epochs=5, stream=Stream())
    stop.on_train_batch_end(0)  # nothing asked: nothing happens
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as caught:
        with stop.handling_sigint():
            assert signal.getsignal(signal.SIGINT) == stop._on_sigint
            stop._on_sigint(signal.SIGINT, None)
            assert stop.requested and statuses == []
            assert Stream.text == "\nstopping after this batch... (Ctrl-C again to quit at once)\n"
            with pytest.raises(ExitCalled):
                stop._on_sigint(signal.SIGINT, None)
            assert statuses == [130]
            assert Stream.text.endswith(
                f"interrupted again: quitting now; {tmp_path} keeps epoch 2 of 5; run the same "
                "command again to resume at epoch 3\n"
            )
            stop.on_train_batch_end(3)
    assert signal.getsignal(signal.SIGINT) == previous  # restored
    assert caught.value.signalled and isinstance(caught.value, KeyboardInterrupt)
    assert str(caught.value) == (
        f"interrupted: {tmp_path} keeps epoch 2 of 5; run the same command again to resume "
        "at epoch 3"
    )
    for hook in (stop.on_test_batch_end, stop.on_epoch_begin):
        with pytest.raises(TrainingInterrupted):
            hook(0)

    # A Ctrl-C after the last hook (fit was ending) still interrupts.
    late = StopOnInterrupt(str(tmp_path), epochs=2)
    with pytest.raises(TrainingInterrupted, match="keeps all 2 epochs"):
        with late.handling_sigint():
            late.requested = True
    (tmp_path / "resume" / "state.json").unlink()
    assert "keeps no finished epoch" in str(TrainingInterrupted(str(tmp_path), 3))


class SigintDuringSecondEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 2:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, 3 batches into epoch 2


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="Python runs signal handlers in the main thread only",
)
def test_train_stops_in_process_without_saving_the_partial_epoch(tmp_path, sst2_sample):
    recipe = get_recipe("sentiment")
    run_dir = tmp_path / "run"
    config = recipe.make_config(
        data=sst2_sample, run_dir=str(run_dir), export_dir=str(tmp_path / "export"),
        **{**TINY, "epochs": 3, "batch_size": 8},
    )  # fmt: skip
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as caught:
        train(recipe, config, verbose=0, callbacks=[SigintDuringSecondEpoch()])
    assert caught.value.signalled and caught.value.run_dir == str(run_dir)
    assert signal.getsignal(signal.SIGINT) == previous
    state = json.loads((run_dir / "resume" / "state.json").read_text())
    assert state["epoch"] == 1 and len(state["history"]["loss"]) == 1
    assert (run_dir / "history.csv").read_text().count("\n") == 2
    assert "keeps epoch 1 of 3" in str(caught.value)


def test_a_finished_run_draws_its_curves_with_the_umask(trained):
    import matplotlib.image

    path = os.path.join(trained.run_dir, "curves.png")
    picture = matplotlib.image.imread(path)
    assert picture.ndim == 3 and picture.shape[0] > 100 and picture.shape[1] > 200
    assert np.ptp(picture[..., :3]) > 0.5  # drawn, not blank
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="Python runs signal handlers in the main thread only",
)
def test_a_ctrl_c_while_quitting_is_ignored(monkeypatch):
    from seqtasks.training import interrupt

    exits = []
    monkeypatch.setattr(interrupt.os, "_exit", exits.append)
    monkeypatch.setattr(interrupt.atexit, "_run_exitfuncs", lambda: None)

    def shutdown():  # a second Ctrl-C lands while the logs are being closed
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)

    monkeypatch.setattr(interrupt.logging, "shutdown", shutdown)
    previous = signal.getsignal(signal.SIGINT)
    try:
        interrupt.exit_now(130)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert exits == [130]


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="Python runs signal handlers in the main thread only",
)
def test_under_the_cli_the_handler_stays_after_a_stop(tmp_path):
    from seqtasks.training import interrupt

    previous = signal.getsignal(signal.SIGINT)
    stop = StopOnInterrupt(str(tmp_path), epochs=2)
    try:
        with interrupt.quit_after_stop():
            with pytest.raises(TrainingInterrupted):
                with stop.handling_sigint():
                    stop.requested = True
            assert signal.getsignal(signal.SIGINT) == stop._on_sigint  # a 2nd Ctrl-C quits
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not interrupt._QUIT_AFTER_STOP[0]  # reset when the block ends
    with StopOnInterrupt(str(tmp_path), epochs=2).handling_sigint():  # no Ctrl-C: restored
        pass
    assert signal.getsignal(signal.SIGINT) == previous
