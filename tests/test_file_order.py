"""The order conftest.py gives the test files (longest first, for the xdist workers) and
tests/file_seconds.py, which records the seconds it orders by."""

import json
import os
import types

from file_seconds import file_seconds, main

from conftest import longest_files_first

REPORT = """\
============================= slowest durations ==============================
40.50s setup    tests/tasks/test_b.py::test_one
2.25s call     tests/tasks/test_b.py::test_two[x-1]
0.50s teardown tests/tasks/test_b.py::test_two[x-1]
7.00s call     tests/cli/test_a.py::test_three
1.50s call     tests/cli/test_a.py::test_four[{"worker": ["a:1"], "x" y]
(12 durations < 0.005s hidden.  Use -vv to show these durations.)
870 passed in 774.31s (0:12:54)
"""


def items(*nodeids):
    return [types.SimpleNamespace(nodeid=n) for n in nodeids]


def test_report_lines_sum_per_file():
    assert file_seconds(REPORT.splitlines()) == {
        "tests/tasks/test_b.py": 43.25,
        "tests/cli/test_a.py": 8.5,  # an id with spaces counts too
    }


def test_longest_files_first_keeps_each_files_tests_together_and_in_order():
    collected = items(
        "tests/a.py::t1", "tests/a.py::t2", "tests/b.py::t1", "tests/c.py::t1",
        "tests/c.py::t2[p]", "tests/d.py::t1", "tests/e.py::t1",
    )  # fmt: skip
    seconds = {"tests/a.py": 1.0, "tests/b.py": 30.0, "tests/c.py": 90.0, "tests/e.py": 5.0}
    longest_files_first(collected, seconds)
    # d.py is not recorded: it counts as the median (b.py's 30 s) and keeps its place after b.
    assert [i.nodeid for i in collected] == [
        "tests/c.py::t1", "tests/c.py::t2[p]", "tests/b.py::t1", "tests/d.py::t1",
        "tests/e.py::t1", "tests/a.py::t1", "tests/a.py::t2",
    ]  # fmt: skip


def test_without_figures_the_collection_order_stays():
    collected = items("tests/z.py::t", "tests/a.py::t", "tests/z2.py::t")
    longest_files_first(collected, {})
    assert [i.nodeid for i in collected] == ["tests/z.py::t", "tests/a.py::t", "tests/z2.py::t"]


def test_the_tool_writes_the_figures_and_refuses_a_report_without_durations(tmp_path, capsys):
    report, out = tmp_path / "report.txt", tmp_path / "seconds.json"
    report.write_text(REPORT)
    assert main([str(report), "--output", str(out)]) == 0
    record = json.loads(out.read_text())
    assert list(record["seconds"]) == ["tests/tasks/test_b.py", "tests/cli/test_a.py"]
    assert record["seconds"]["tests/tasks/test_b.py"] == 43.2  # rounded to 0.1 s
    (tmp_path / "empty.txt").write_text("870 passed\n")
    assert main([str(tmp_path / "empty.txt"), "--output", str(out)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'empty.txt'}: no --durations lines found\n"
    assert not os.path.exists(str(out) + ".tmp")
