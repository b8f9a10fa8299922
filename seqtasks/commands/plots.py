"""``cli.py plot-attention`` and ``cli.py plot-captions``: pictures of what an export does;
``cli.py plot-runs``: training runs' curves side by side."""

from __future__ import annotations

import contextlib
import json
import os
import warnings

import click

from seqtasks.commands.common import (
    _load_export,
    _reports_user_errors,
    _setup_logging,
    require_command,
)
from seqtasks.errors import UserError


@contextlib.contextmanager
def _quiet_frameworks():
    """Keras/TensorFlow/keras-hub ``UserWarning``s (e.g. Keras' softmax-over-one-position
    notice) stay off stderr while a plot command runs; other warnings still show."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", category=UserWarning, module=r"(keras|keras_hub|tensorflow|tf_keras)\b"
        )
        yield


@click.command("plot-attention")
@click.argument("model_dir", type=click.Path())
@click.argument("sentence")
@click.option(
    "-o",
    "--output",
    default="attention.png",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="PNG file to write.",
)
@click.option("--json", "as_json", is_flag=True, help="Print tokens and translation as JSON.")
@_reports_user_errors
def plot_attention(model_dir, sentence, output, as_json):
    """Translate SENTENCE and write a heatmap of the model's cross-attention as a PNG.

    Rows are the generated target subwords ([END] included), columns the
    source subwords; for Transformers, the last decoder block's weights
    averaged over heads. Works with rnn-attention and transformer exports.

    \b
    Examples:
      python cli.py plot-attention saved_models/translation \\
          "A man is riding a bicycle down the street." -o bicycle.png
    """
    _setup_logging(quiet=True)
    version_dir, metadata, task = _load_export(model_dir)
    require_command(task, "plot-attention", version_dir)
    with _quiet_frameworks():
        result = task.plot_attention(version_dir, metadata, sentence, output)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        click.echo(result["translation"])
        click.echo(f"wrote {output}")


@click.command("plot-captions")
@click.argument("model_dir", type=click.Path())
@click.argument("images", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    default="captions.png",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="PNG file to write.",
)
@click.option(
    "--attention",
    is_flag=True,
    help="Also draw each generated word's attention map over the image (attention and "
    "transformer models).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the captions as JSON.")
@_reports_user_errors
def plot_captions(model_dir, images, output, attention, as_json):
    """Caption IMAGES with a captioning export and write them as a PNG grid.

    Each image is drawn as the model sees it (resized square) with its
    generated caption underneath. With --attention, each image gets a row of
    panels, one per generated word, with the attention weights over the CNN
    feature grid laid over the image.

    \b
    Examples:
      python cli.py plot-captions saved_models/captioning dog.jpg beach.png -o captions.png
      python cli.py plot-captions saved_models/captioning dog.jpg --attention -o dog.png
    """
    _setup_logging(quiet=True)
    version_dir, metadata, task = _load_export(model_dir)
    require_command(task, "plot-captions", version_dir)
    with _quiet_frameworks():
        result = task.plot_captions(version_dir, metadata, list(images), output, attention)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        for row in result["captions"]:
            click.echo(f"{row['caption']}\t{row['image']}")
        click.echo(f"wrote {output}")


@click.command("plot-runs")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o",
    "--output",
    default="runs.png",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="PNG file to write.",
)
@click.option(
    "--metric",
    help="Draw only this metric (loss, accuracy, ...; default: every metric, loss first).",
)
@_reports_user_errors
def plot_runs(run_dirs, output, metric):
    """Overlay the training curves of RUN_DIRS (from their history.csv) in one PNG.

    One colour per run: validation solid (a dot on the exported epoch of a
    finished run), training dashed; one panel per metric. Unfinished runs are
    drawn up to their last finished epoch. Each run also has its own
    curves.png, written when its training ends.

    \b
    Examples:
      python cli.py plot-runs runs/sentiment-20250101-120000 runs/sentiment-20250102-090000
      python cli.py plot-runs runs/translation-* --metric loss -o loss.png
    """
    from seqtasks.curves import compare_runs

    histories, best = {}, {}
    for run_dir in run_dirs:
        if not os.path.isdir(run_dir):
            raise UserError(f"{run_dir}: no such folder")
        if not os.path.isfile(os.path.join(run_dir, "config.json")):
            raise UserError(f"{run_dir}: not a run directory (no config.json)")
        history = os.path.join(run_dir, "history.csv")
        if not os.path.isfile(history):
            raise UserError(f"{run_dir}: no history.csv (no epoch finished yet)")
        label = os.path.basename(os.path.normpath(run_dir))
        label = run_dir if label in histories else label
        histories[label] = history
        best[label] = _best_epoch(run_dir)
    try:
        compare_runs(histories, output, metric=metric, best_epochs=best)
    except (OSError, ValueError) as e:
        raise UserError(str(e)) from None
    click.echo(f"wrote {output}")


def _best_epoch(run_dir: str) -> int | None:
    """A finished run's exported epoch (``best_epoch`` in its metrics.json), else None."""
    try:
        with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
            value = json.load(f).get("best_epoch")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None
