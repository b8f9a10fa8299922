"""``cli.py predict`` and ``cli.py evaluate``: run an export on inputs or a labelled dataset."""

from __future__ import annotations

import json

import click

from seqtasks.commands.common import (
    _caption_options,
    _data_options,
    _given,
    _load_export,
    _parallel_options,
    _read_export,
    _read_inputs,
    _reports_user_errors,
    _setup_logging,
)
from seqtasks.errors import UserError
from tasks.registry import check_data_path


@click.command()
@click.argument("model_dir", type=click.Path())
@click.argument("texts", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per input.")
@_reports_user_errors
def predict(model_dir, texts, as_json):
    """Run an exported model on TEXTS (use - to read one text per line from stdin).

    MODEL_DIR is a model's base folder (its newest version is used) or a
    version folder. The SavedModel does its own tokenization (and, for
    translation and captioning, beam search and detokenization). For
    captioning models TEXTS are image files (JPEG, PNG, GIF, BMP; or .npy
    vectors for feature models). Output: one line per input,
    label<TAB>probability<TAB>text for classifiers (multi-label: the labels
    scoring >= the threshold with their scores, then TAB and the text), the
    translation<TAB>text for translation models, caption<TAB>image for captioning;
    --json gives the score too.

    \b
    Examples:
      python cli.py predict saved_models/sentiment "A moving, beautifully acted film." \\
          "Two hours I will never get back."
      cat reviews.txt | python cli.py predict saved_models/sentiment/1 - --json
      python cli.py predict saved_models/translation "A man is riding a bicycle down the street."
      python cli.py predict saved_models/captioning photo.jpg another.png
    """
    _setup_logging(quiet=True)
    inputs = _read_inputs(texts)
    version_dir, metadata, task = _load_export(model_dir)
    results = task.predict(version_dir, metadata, inputs)
    for result in results:
        if as_json:
            click.echo(json.dumps(result, ensure_ascii=False))
        else:
            click.echo(task.format_prediction(result))


@click.command()
@click.argument("model_dir", type=click.Path())
@click.option("--data", help="Labelled data or parallel text, in any format `train` reads.")
@_data_options
@_parallel_options
@_caption_options
@click.option(
    "--split",
    help="Sub-folder of a label-folder layout (default train), split of a folder of "
    "<split>.<lang> files (default test), TFDS split, or Flickr8k split (default dev).",
)
@click.option("--label-map", help="Map data labels to model labels, e.g. 0=neg,1=pos.")
@click.option("--max-examples", type=click.IntRange(min=1), help="Score only the first N examples.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@_reports_user_errors
def evaluate(
    model_dir,
    data,
    split,
    label_map,
    max_examples,
    as_json,
    **data_options,
):
    """Score an exported model on held-out data.

    Classifiers: accuracy, macro-F1, confusion matrix. Integer labels 0..K-1
    in the data are matched to the model's sorted labels by index (SST-2's
    0/1 to IMDB's neg/pos) unless --label-map says otherwise. Multi-label
    classifiers (train --multi-label): subset accuracy, Hamming loss, micro
    and macro precision/recall/F1 and per-label scores at the export's
    threshold; the data's labels are split on the export's separator.

    Translation: the export translates the split with its baked-in beam
    search; sacreBLEU BLEU and chrF (with their signatures) and perplexity.
    Languages default to the model's.

    Captioning: the export captions every image of the split (JPEG bytes
    in); corpus BLEU-1..4 against all reference captions (sacreBLEU) and
    CIDEr-D.

    \b
    Examples:
      python cli.py evaluate saved_models/sentiment --data ../shared/data/sst2/dev.tsv
      python cli.py evaluate saved_models/sentiment/2 --data tickets.csv --json
      python cli.py evaluate saved_models/sentiment --data reviews.parquet --on-bad-rows skip
      python cli.py evaluate saved_models/translation --data ../shared/data/multi30k \\
          --split test_2016_flickr --json
      python cli.py evaluate saved_models/captioning --data ../shared/data/flickr8k \\
          --split dev --json
    """
    _setup_logging(quiet=True)
    mapping = None
    if label_map:
        from seqtasks.config import parse_assignments

        mapping = parse_assignments(label_map.split(","), "--label-map", "0=neg,1=pos")
    # Every check that needs no TensorFlow comes first (the registry knows the options).
    version_dir, metadata, known = _read_export(model_dir)
    options = {
        **_given(data_options),
        "split": split,
        "label_map": mapping,
        "max_examples": max_examples,
    }
    options = {k: v for k, v in options.items() if v is not None}
    unsupported = sorted(set(options) - set(known.evaluate_options))
    if unsupported:
        flag = "--" + unsupported[0].replace("_", "-")
        raise UserError(f"{flag} does not apply to {known.name} models")
    if not data and not options.get("source_file"):
        raise UserError(
            "no data: pass --data PATH"
            + (
                " (or --source-file and --target-file)"
                if "source_file" in known.evaluate_options
                else ""
            )
        )
    check_data_path(data)
    for flag in ("source_file", "target_file"):
        check_data_path(options.get(flag))
    task = known.recipe_class()()  # imports TensorFlow
    report = task.evaluate_export(version_dir, metadata, data=data, **options)
    report["model"] = version_dir
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo(f"model     {version_dir}\ndata      {data or options['source_file']}")
        click.echo(task.format_report(report))
