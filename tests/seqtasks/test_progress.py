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
