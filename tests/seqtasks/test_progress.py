"""seqtasks.progress: plain lines off a terminal, a tqdm bar on one, silence when disabled."""

import io

import pytest

from seqtasks import progress as progress_module
from seqtasks.progress import Progress, counting_calls, progress, set_enabled, track


@pytest.fixture(autouse=True)
def default_enabled(monkeypatch):
    monkeypatch.delenv("SEQTASKS_PROGRESS", raising=False)
    set_enabled(None)
    yield
    set_enabled(None)


def test_plain_lines_every_ten_percent_when_not_a_terminal():
    stream = io.StringIO()
    with progress("encoding images", total=20, unit="images", stream=stream, delay=0) as bar:
        for _ in range(20):
            bar.update(1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # 0% is never written: 10%, 20%, ..., 100% and the first update
    assert lines[0] == "encoding images: 5% (1/20 images, 0 s)"
    assert lines[1].startswith("encoding images: 10% (2/20 images, ")
    assert lines[-1].startswith("encoding images: 100% (20/20 images, ")
    assert all("\r" not in line and "\x1b" not in line for line in lines)


def test_unknown_total_and_track():
    stream = io.StringIO()
    out = list(track(iter("abc"), "reading", unit="files", stream=stream, delay=0))
    assert out == ["a", "b", "c"]
    lines = stream.getvalue().splitlines()
    assert lines[0] == "reading: 1 files (0 s)" and lines[-1] == "reading: 3 files (0 s, done)"
    sized = io.StringIO()
    assert list(track([1, 2], "two", stream=sized, delay=0)) == [1, 2]
    assert sized.getvalue().splitlines()[-1].startswith("two: 100% (2/2 steps, ")


def test_quick_steps_are_silent():
    stream = io.StringIO()
    with progress("fast", total=5, stream=stream) as bar:  # default delay: 2 s
        bar.update(5)
    assert stream.getvalue() == ""


@pytest.mark.parametrize("how", ["argument", "set_enabled", "environment"])
def test_quiet_when_disabled(monkeypatch, how):
    stream = io.StringIO()
    kwargs = {"disable": True} if how == "argument" else {}
    if how == "set_enabled":
        set_enabled(False)
    if how == "environment":
        monkeypatch.setenv("SEQTASKS_PROGRESS", "0")
    assert progress_module.enabled() is (how == "argument")
    for terminal in (False, True):
        with progress("x", total=3, stream=stream, delay=0, terminal=terminal, **kwargs) as bar:
            bar.update(3)
    assert stream.getvalue() == ""


def test_a_terminal_gets_a_tqdm_bar():
    stream = io.StringIO()
    bar = Progress("learning", total=4, unit="batches", stream=stream, delay=0, terminal=True)
    for _ in range(4):
        bar.update(1)
    bar.close()
    text = stream.getvalue()
    assert "learning" in text and "0/4 [" in text and "batches/s" in text and "\r" in text


def test_counting_calls_counts_batch_rows():
    class Batch:
        shape = (7, 3)

    stream = io.StringIO()
    with progress("calls", total=14, stream=stream, delay=0) as bar:
        fn = counting_calls(lambda **kw: {"out": kw["text"].shape}, bar, "text")
        assert fn(text=Batch()) == {"out": (7, 3)}
        fn(text=Batch())
        assert bar.n == 14
    assert stream.getvalue().splitlines()[-1].startswith("calls: 100% (14/14 steps, ")


def _recording_progress(stream):
    """``progress`` that writes every update (no delay) to ``stream``."""

    def make(description, total=None, unit="steps", **kwargs):
        return progress(description, total, unit, stream=stream, delay=0, **kwargs)

    return make


def test_reading_a_label_folder_archive_reports_bytes_read(tmp_path, monkeypatch):
    import tarfile

    from seqtasks.data import classification, label_folders

    archive = tmp_path / "reviews.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for i in range(40):
            path = tmp_path / f"r{i}.txt"
            path.write_text(f"review number {i} " * 200)
            tar.add(path, arcname=f"train/{'pos' if i % 2 else 'neg'}/{i}.txt")
    stream = io.StringIO()
    monkeypatch.setattr(label_folders, "progress", _recording_progress(stream))
    data = classification.load_text_classification(str(archive))
    assert len(data.texts) == 40
    lines = stream.getvalue().splitlines()
    size = archive.stat().st_size
    assert lines and all(line.startswith("reading reviews.tar.gz: ") for line in lines)
    assert lines[-1].startswith(f"reading reviews.tar.gz: 100% ({size}/{size} bytes")


def test_exporting_reports_one_step_per_file(tmp_path, monkeypatch):
    from seqtasks import export

    stream = io.StringIO()
    monkeypatch.setattr(progress_module, "progress", _recording_progress(stream))

    def write_saved_model(path):
        open(f"{path}/saved_model.pb", "wb").close()

    def write_extra(path):
        open(path, "w").close()

    final = export.write_version(
        str(tmp_path / "model"), write_saved_model, {"task": "t"}, {"a.txt": write_extra}
    )
    assert final.endswith("/1")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "exporting: 33% (1/3 steps, 0 s)"
    assert lines[-1].startswith("exporting: 100% (3/3 steps, ")
