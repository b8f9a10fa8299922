"""What every command shares: one-line user errors (exit status 2), logging, the data
options of ``train``/``finetune``/``evaluate``, reading inputs, loading an export."""

from __future__ import annotations

import functools
import logging
import sys

import click

from seqtasks.errors import UserError
from seqtasks.io import decode_utf8

EXIT_USER_ERROR = 2


def _reports_user_errors(command):
    """Turn UserError into one stderr line and exit status 2 (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UserError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    if quiet:  # --quiet: no progress bars either
        from seqtasks import progress

        progress.set_enabled(False)


_mixed_precision_option = click.option(
    "--mixed-precision",
    is_flag=True,
    help="Train with Keras' mixed_float16 policy (config field mixed_precision): float16 math, "
    "float32 weights, outputs and export; for GPUs (slower on CPU).",
)


def _data_options(command):
    """--format, --text-column, --label-column, --on-bad-rows: how to read a data file."""
    options = [
        click.option(
            "--format",
            "format_",
            help="Data format: tsv, csv, jsonl or parquet (default: from the extension; a "
            "translation .tsv/.txt is a headerless pair file unless its first line names "
            "both columns or column options are given).",
        ),
        click.option("--text-column", help="Text field of CSV/TSV/JSONL/Parquet data."),
        click.option("--label-column", help="Label field of CSV/TSV/JSONL/Parquet data."),
        click.option(
            "--on-bad-rows",
            type=click.Choice(["error", "skip"]),
            help="Any recipe's data: error (default) stops at the first malformed row "
            "(wrong number of fields or no tab, empty or null field, invalid JSON, bad "
            "UTF-8, a caption file row whose image file is missing); skip drops such rows, warns with their count "
            "and first line numbers, and records the count as data.skipped_bad_rows.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _parallel_options(command):
    """--source-lang, --target-lang, --source-file, --target-file, --source-column,
    --target-column (translation data)."""
    options = [
        click.option("--source-lang", help="Translation: source language code, e.g. en."),
        click.option("--target-lang", help="Translation: target language code, e.g. de."),
        click.option(
            "--source-column",
            help="Translation: source field of CSV/TSV/JSONL/Parquet pairs (default: the "
            "source language code if such a column exists, else source).",
        ),
        click.option(
            "--target-column",
            help="Translation: target field (default: the target language code, else target).",
        ),
        click.option(
            "--source-file", type=click.Path(), help="Translation: source sentences, one per line."
        ),
        click.option(
            "--target-file", type=click.Path(), help="Translation: their translations, aligned."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _caption_options(command):
    """--image-dir, --captions-file, --image-column, --caption-column (captioning data)."""
    options = [
        click.option(
            "--image-column",
            help="Captioning: image file (or vector id) field of CSV/TSV/JSONL/Parquet "
            "captions (default: image).",
        ),
        click.option("--caption-column", help="Captioning: caption field (default: caption)."),
        click.option(
            "--image-dir",
            type=click.Path(),
            help="Captioning: image folder or .tar (default: the Flickr8k folder's, or the "
            "CSV's folder).",
        ),
        click.option(
            "--captions-file",
            type=click.Path(),
            help="Captioning with feature vectors (.npz): the image,caption CSV keyed by vector id.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _given(data_options: dict) -> dict:
    """The data options (``_data_options``, ``_parallel_options``, ``_caption_options``)
    that were given, keyed by config field (``format_`` is ``format``)."""
    return {
        "format" if name == "format_" else name: value
        for name, value in data_options.items()
        if value is not None
    }


def _read_inputs(texts: tuple[str, ...]) -> list[str]:
    """Command-line texts, with ``-`` replaced by stdin's lines; all must be UTF-8."""
    inputs = []
    for position, text in enumerate(texts, start=1):
        if text == "-":
            raw = (
                sys.stdin.buffer.read()
                if hasattr(sys.stdin, "buffer")
                else sys.stdin.read().encode()
            )
            lines = decode_utf8(raw, "<stdin>").split("\n")
            inputs.extend(line.rstrip("\r") for line in (lines[:-1] if lines[-1] == "" else lines))
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise UserError(f"argument {position}: not valid UTF-8; expected UTF-8 text") from None
        inputs.append(text)
    if not inputs:
        raise UserError("no input: give texts as arguments, or - to read lines from stdin")
    return inputs


def require_command(task, command: str, version_dir: str) -> None:
    """Refuse an export whose recipe does not declare ``command`` in ``extra_commands``.

    Raises:
        UserError: naming the recipes whose models the command needs.
    """
    if command in task.extra_commands:
        return
    from tasks import RECIPES

    owners = " or ".join(sorted(r.name for r in RECIPES.values() if command in r.extra_commands))
    raise UserError(f"{version_dir}: {command} needs a {owners} model; this is a {task.name} model")


def _read_export(model_dir: str):
    """``(version_dir, metadata, registry entry)`` of an export, without TensorFlow.

    Raises:
        ExportError: not an export (or no version in it); UserError: an unknown recipe.
    """
    from seqtasks.export import read_metadata, resolve_export
    from tasks.registry import entry

    version_dir = resolve_export(model_dir)
    metadata = read_metadata(version_dir)
    return version_dir, metadata, entry(str(metadata["task"]))


def _load_export(model_dir: str):
    """``(version_dir, metadata, recipe)`` of an export; importing the recipe imports
    TensorFlow."""
    version_dir, metadata, known = _read_export(model_dir)
    return version_dir, metadata, known.recipe_class()()


def echo_other_worker(result) -> bool:
    """On a multi-worker run's worker other than the chief (no run dir), say so; True if so."""
    if result.run_dir is not None:
        return False
    index = result.metrics["distribution"]["worker_index"]
    click.echo(f"worker {index}: training done; worker 0 writes the run and the export")
    return True


def plural(count: int, noun: str) -> str:
    """``1 epoch``, ``3 epochs``, ``0 epochs``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def validation_line(metrics: dict) -> str:
    """``validation: loss 0.4120  accuracy 0.8100 ...  (3 epochs, 42 s)`` (``1 epoch``)."""
    scores = "  ".join(
        f"{name[len('val_') :]} {value:.4f}"
        for name, value in metrics.items()
        if name.startswith("val_") and isinstance(value, float)
    )
    return (
        f"validation: {scores}  ({plural(metrics['epochs_run'], 'epoch')}, "
        f"{metrics['train_seconds']:.0f} s)"
    )
