"""``cli.py plot-attention`` and ``cli.py plot-captions``: pictures of what an export does."""

from __future__ import annotations

import json

import click

from seqtasks.commands.common import (
    _load_export,
    _reports_user_errors,
    _setup_logging,
    require_command,
)


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
    result = task.plot_captions(version_dir, metadata, list(images), output, attention)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        for row in result["captions"]:
            click.echo(f"{row['caption']}\t{row['image']}")
        click.echo(f"wrote {output}")
