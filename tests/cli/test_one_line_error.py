"""The shared ``assert_one_line_error`` helper (conftest) fails when it should: on a
two-line error, on exit status 1, on a missing phrase and on a traceback, for click's
``Result`` and for a ``subprocess.CompletedProcess``."""

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from conftest import assert_one_line_error


def _click_run(stderr: str, status: int, stdout: str = ""):
    """A click command that prints ``stdout`` and ``stderr`` and exits with ``status``."""

    @click.command()
    def command():
        click.echo(stdout, nl=False)
        click.echo(stderr, err=True, nl=False)
        sys.exit(status)

    return CliRunner().invoke(command, [])


def _process(stderr: str, status: int, stdout: str = ""):
    return subprocess.CompletedProcess(["cli.py"], status, stdout=stdout, stderr=stderr)


@pytest.mark.parametrize("make", [_click_run, _process], ids=["click", "subprocess"])
def test_a_one_line_error_passes_and_returns_the_line(make):
    result = make("error: data.tsv:3: expected 2 fields, got 3\n", 2)
    line = assert_one_line_error(result, "data.tsv:3", "expected 2 fields")
    assert line == "error: data.tsv:3: expected 2 fields, got 3"


@pytest.mark.parametrize("make", [_click_run, _process], ids=["click", "subprocess"])
def test_it_fails_on_a_two_line_error(make):
    result = make("error: data.tsv:3: expected 2 fields\nerror: and another line\n", 2)
    with pytest.raises(AssertionError, match="expected one error line on stderr, found 2"):
        assert_one_line_error(result, "data.tsv:3")


@pytest.mark.parametrize("make", [_click_run, _process], ids=["click", "subprocess"])
def test_it_fails_on_exit_status_1(make):
    result = make("error: data.tsv:3: expected 2 fields\n", 1)
    with pytest.raises(AssertionError, match="exit status 1, expected 2"):
        assert_one_line_error(result, "data.tsv:3")


@pytest.mark.parametrize("make", [_click_run, _process], ids=["click", "subprocess"])
def test_it_fails_on_a_missing_phrase_and_on_a_traceback(make):
    result = make("error: data.tsv:3: expected 2 fields\n", 2)
    with pytest.raises(AssertionError, match="'no such file' is not in the error line"):
        assert_one_line_error(result, "data.tsv:3", "no such file")
    result = make("error: data.tsv:3: expected 2 fields\n", 2, stdout="Traceback (most recent)\n")
    with pytest.raises(AssertionError, match="Traceback"):
        assert_one_line_error(result)
