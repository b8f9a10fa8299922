#!/usr/bin/env python
"""seqtasks command line: train, evaluate, predict with sequence-model recipes.

This file only parses arguments, calls seqtasks and prints; the logic lives in
``seqtasks/`` and ``tasks/``. A user error (bad data, unknown option value, a
folder that is not an export) prints one ``error: ...`` line on stderr and
exits with status 2.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import click  # noqa: E402

from seqtasks.errors import UserError  # noqa: E402
from seqtasks.io import decode_utf8  # noqa: E402

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


def _load_export(model_dir: str):
    from seqtasks.export import read_metadata, resolve_export
    from tasks import get_recipe

    version_dir = resolve_export(model_dir)
    metadata = read_metadata(version_dir)
    return version_dir, metadata, get_recipe(str(metadata["task"]))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name=None, version=__import__("seqtasks").__version__)
def cli():
    """seqtasks: train, export and serve sequence models with one command.

    \b
    python cli.py recipes
    python cli.py train sentiment --data ../shared/data/imdb/aclImdb_v1_train.tar.gz
    python cli.py predict saved_models/sentiment "A moving, beautifully acted film."
    python cli.py evaluate saved_models/sentiment --data ../shared/data/sst2/dev.tsv --json
    """


@cli.command()
@click.argument("recipe")
@click.option(
    "--data",
    help="Training data: a file (.tsv/.csv/.jsonl/.parquet), a folder or archive of "
    "label folders (aclImdb), a folder of <split>.<lang>[.gz] files, a headerless pair "
    "file or .zip (translation), a Flickr8k folder or a .npz of feature vectors "
    "(captioning), or tfds:<name>.",
)
@click.option(
    "--model", help="Architecture, e.g. bilstm, transformer, rnn-attention (see `recipes`)."
)
@click.option("--epochs", type=int, help="Maximum epochs (early stopping may stop sooner).")
@click.option("--batch-size", type=int, help="Examples per batch.")
@click.option("--max-examples", type=int, help="Use only the first N training examples.")
@click.option("--seed", type=int, help="Seed for data order, split and initialisation.")
@click.option(
    "--export-dir", help="Export versions to DIR/<version>/ (default saved_models/<recipe>)."
)
@click.option(
    "--run-dir", help="Run directory for logs and checkpoints (default runs/<recipe>-<time>)."
)
@click.option(
    "--resume/--no-resume",
    default=True,
    help="Continue an unfinished run with the same settings and data: --run-dir's, else the "
    "newest under runs/ (default); --no-resume starts a fresh run.",
)
@click.option(
    "--strategy",
    type=click.Choice(["auto", "one-device", "mirrored", "multi-worker"]),
    default="auto",
    show_default=True,
    help="tf.distribute data parallelism: one-device; mirrored (the GPUs of this host); "
    "multi-worker (the hosts in the TF_CONFIG environment variable; worker 0 writes the run "
    "and the export; batch size is per worker); auto: multi-worker if TF_CONFIG names several "
    "tasks, mirrored if several GPUs, else one device.",
)
@_data_options
@_parallel_options
@_caption_options
@click.option(
    "--split",
    help="Training split: of a folder of <split>.<lang> files or TFDS (translation), of a "
    "Flickr8k folder (captioning).",
)
@click.option(
    "--beam-size", type=int, help="Translation, captioning: beam size of evaluation and the export."
)
@click.option(
    "--multi-label",
    is_flag=True,
    help="Sentiment: several labels per text (a CSV/TSV/JSONL/Parquet file): a sigmoid unit per "
    "label, binary cross-entropy; the export returns per-label scores and the labels scoring "
    ">= threshold (--set threshold=0.5).",
)
@click.option(
    "--label-separator",
    help="With --multi-label: what separates the labels of a string field (default |: "
    "sports|politics); JSON and Parquet lists need none.",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set any config field (repeatable); `recipes RECIPE` lists them.",
)
@_mixed_precision_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and the result.")
@_reports_user_errors
def train(
    recipe,
    data,
    model,
    epochs,
    batch_size,
    max_examples,
    seed,
    export_dir,
    run_dir,
    resume,
    strategy,
    split,
    beam_size,
    multi_label,
    label_separator,
    assignments,
    mixed_precision,
    as_json,
    quiet,
    **data_options,
):
    """Train RECIPE, evaluate on held-out data and export a SavedModel.

    A validation split is carved (seeded) from the training data; early
    stopping watches its loss and the best weights are exported to
    saved_models/<recipe>/<version>/.

    Interrupted (Ctrl-C, kill -9)? Run the same command again: training
    continues after the last finished epoch of the unfinished run with the
    same settings and data (--run-dir's, else the newest in runs/), and ends
    with the metrics an uninterrupted run would have. --no-resume starts over.

    \b
    Examples:
      python cli.py train sentiment --data ../shared/data/imdb/aclImdb_v1_train.tar.gz
      python cli.py train sentiment --data ../shared/data/sst2/train.tsv --model transformer \\
          --epochs 3 --set num_layers=2 --set dropout=0.2
      python cli.py train sentiment --data reviews.csv --text-column body --label-column stars
      python cli.py train sentiment --data reviews.parquet --on-bad-rows skip
      python cli.py train sentiment --data articles.csv --label-column topics --multi-label
      python cli.py train translation --data ../shared/data/multi30k --source-lang en \\
          --target-lang de
      python cli.py train translation --data ../shared/data/anki/spa-eng.zip \\
          --source-lang en --target-lang es --model rnn-attention
      python cli.py train translation --data pairs.jsonl --source-column english \\
          --target-column german --on-bad-rows skip
      KERAS_HOME=../shared/keras_home python cli.py train captioning \\
          --data ../shared/data/flickr8k
      python cli.py train captioning --data photos.csv --image-dir photos/ --set encoder=cnn
      python cli.py train captioning --data photos.parquet --image-column file \\
          --caption-column text --on-bad-rows skip
    """
    _setup_logging(quiet)
    from seqtasks.config import parse_assignments
    from seqtasks.training import train as run_training
    from tasks import get_recipe

    task = get_recipe(recipe)
    overrides = parse_assignments(assignments)
    flags = {
        "data": data,
        "model": model,
        "epochs": epochs,
        "batch_size": batch_size,
        "max_examples": max_examples,
        "seed": seed,
        "export_dir": export_dir,
        "run_dir": run_dir,
        **_given(data_options),
        "split": split,
        "beam_size": beam_size,
        "multi_label": True if multi_label else None,
        "label_separator": label_separator,
        "mixed_precision": True if mixed_precision else None,
    }
    overrides.update({k: v for k, v in flags.items() if v is not None})
    config = task.make_config(**overrides)
    # With --json, stdout carries only the JSON result: progress goes to stderr.
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        try:
            result = run_training(
                task, config, verbose=0 if quiet else None, resume=resume, strategy=strategy
            )
        except KeyboardInterrupt:
            click.echo("interrupted; run the same command again to resume", err=True)
            sys.exit(130)
    summary = {"export": result.export_path, "run_dir": result.run_dir, "metrics": result.metrics}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    if result.run_dir is None:  # a multi-worker run's worker other than the chief
        index = result.metrics["distribution"]["worker_index"]
        click.echo(f"worker {index}: training done; worker 0 writes the run and the export")
        return
    m = result.metrics
    scores = "  ".join(
        f"{name[len('val_') :]} {value:.4f}"
        for name, value in m.items()
        if name.startswith("val_") and isinstance(value, float)
    )
    click.echo(f"validation: {scores}  ({m['epochs_run']} epochs, {m['train_seconds']:.0f} s)")
    if result.export_path:
        click.echo(f"exported {result.export_path}")
    else:
        click.echo(f"not exported (needs KERAS_BACKEND=tensorflow); model in {result.run_dir}")
    click.echo(f"run directory {result.run_dir}")


@cli.command()
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
    translation for translation models, caption<TAB>image for captioning;
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


@cli.command()
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
    version_dir, metadata, task = _load_export(model_dir)
    options = {
        **_given(data_options),
        "split": split,
        "label_map": mapping,
        "max_examples": max_examples,
    }
    options = {k: v for k, v in options.items() if v is not None}
    unsupported = sorted(set(options) - set(task.evaluate_options))
    if unsupported:
        flag = "--" + unsupported[0].replace("_", "-")
        raise UserError(f"{flag} does not apply to {task.name} models")
    if not data and not options.get("source_file"):
        raise UserError(
            "no data: pass --data PATH"
            + (
                " (or --source-file and --target-file)"
                if "source_file" in task.evaluate_options
                else ""
            )
        )
    report = task.evaluate_export(version_dir, metadata, data=data, **options)
    report["model"] = version_dir
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo(f"model     {version_dir}\ndata      {data or options['source_file']}")
        click.echo(task.format_report(report))


@cli.command()
@click.argument("model_dir", type=click.Path())
@click.option(
    "--data",
    help="The new data, in any format `train` reads for the model's recipe: labelled texts, "
    "sentence pairs, or images with captions.",
)
@_data_options
@_parallel_options
@_caption_options
@click.option(
    "--split",
    help="Split of a folder of <split>.<lang> files or TFDS (translation), of a Flickr8k "
    "folder (captioning); default train.",
)
@click.option("--epochs", type=int, help="Maximum epochs (default: the model's; early stopping).")
@click.option(
    "--learning-rate",
    type=float,
    default=1e-4,
    show_default=True,
    help="Adam learning rate of the fine-tuning (Transformers: the peak after a warm-up of at "
    "most 100 steps).",
)
@click.option(
    "--freeze",
    type=click.Choice(["encoder", "embeddings", "none"]),
    default="none",
    show_default=True,
    help="Keep these layers fixed. Sentiment: encoder = embeddings and recurrent/Transformer "
    "layers (only the head trains). Translation: encoder = source embedding and encoder "
    "layers. Captioning: encoder = the decoder's image side (feature projection; RNN bridge; "
    "Transformer feature encoder) and an image encoder trained end to end. embeddings = token "
    "(and position) embeddings.",
)
@click.option(
    "--new-head",
    is_flag=True,
    help="Sentiment: replace the classification head with a fresh one for the new data's "
    "labels (needed when it has labels the model does not know).",
)
@click.option("--batch-size", type=int, help="Examples per batch (default: the model's).")
@click.option("--max-examples", type=int, help="Use only the first N examples.")
@click.option("--seed", type=int, help="Seed for data order and the validation split.")
@click.option(
    "--export-dir", help="Write the new version to DIR/<version>/ (default: MODEL_DIR's folder)."
)
@click.option(
    "--run-dir",
    help="Run directory for logs and checkpoints (default runs/<recipe>-finetune-<time>).",
)
@click.option(
    "--resume/--no-resume",
    default=True,
    help="Continue an unfinished fine-tuning run with the same settings, data and source "
    "version: --run-dir's, else the newest under runs/ (default); --no-resume starts over.",
)
@_mixed_precision_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and the result.")
@_reports_user_errors
def finetune(
    model_dir,
    data,
    split,
    epochs,
    learning_rate,
    freeze,
    new_head,
    batch_size,
    max_examples,
    seed,
    export_dir,
    run_dir,
    resume,
    mixed_precision,
    as_json,
    quiet,
    **data_options,
):
    """Continue training an exported model on new data; export the next version.

    MODEL_DIR is a model's base folder (its newest version is the source) or
    a version folder, of any recipe. The export's Keras model(s) and
    vocabulary are loaded and the new data is checked against them before
    anything is written:

    \b
    - sentiment: the share of the new words the vocabulary lacks (a warning
      above 20%); labels must be the model's (or some of them) unless
      --new-head puts a fresh head for the new label set over the old encoder;
    - translation: the language pair must be the model's (--source-lang and
      --target-lang default to it); the WordPiece vocabularies are kept, and
      the share of [UNK] tokens and the pieces per word (next to the original
      training data's) are reported, with a warning above 5% [UNK] or 1.5x
      the training pieces per word; a Transformer warms up for at most 100
      steps to --learning-rate;
    - captioning: new images go through the export's image encoder (cached
      features are keyed by its weights); the share of caption words that
      are not whole vocabulary tokens is reported (a warning above 20%).

    Validation split, early stopping, checkpoints and the run directory work
    as in `train`. The new version (end to end like `train`'s exports)
    records finetuned_from (the source version folder) in its metadata.

    Interrupted (Ctrl-C, kill -9)? Run the same command again: fine-tuning
    continues after the last finished epoch of the unfinished run with the
    same settings, data, source version and --freeze (--run-dir's, else the
    newest in runs/). --no-resume starts over.

    \b
    Examples:
      python cli.py finetune saved_models/sentiment --data my_reviews.csv \\
          --text-column body --label-column stars --epochs 3
      python cli.py finetune saved_models/sentiment/2 --data tickets.jsonl --new-head \\
          --freeze encoder --export-dir saved_models/tickets
      python cli.py finetune saved_models/translation --data my_pairs.tsv --epochs 2
      python cli.py finetune saved_models/translation --data ../shared/data/multi30k \\
          --split val --freeze encoder --export-dir saved_models/translation-val
      python cli.py finetune saved_models/captioning --data my_photos.csv \\
          --image-dir my_photos/ --freeze embeddings --epochs 3
    """
    _setup_logging(quiet)
    import dataclasses

    from seqtasks.training import finetune as run_finetune

    version_dir, metadata, task = _load_export(model_dir)
    if not data and not data_options.get("source_file"):
        raise UserError("no data: pass --data PATH (the new training data)")
    fields = {f.name for f in dataclasses.fields(task.config_class)}
    options = _given(data_options)
    if split is not None:
        options["split"] = split
    foreign = sorted("--" + field.replace("_", "-") for field in options if field not in fields)
    if foreign:
        raise UserError(
            f"{', '.join(foreign)}: {'does' if len(foreign) == 1 else 'do'} not apply to "
            f"{task.name} models"
        )
    flags = {
        "data": data,
        **options,
        "epochs": epochs,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "max_examples": max_examples,
        "seed": seed,
        "export_dir": export_dir or os.path.dirname(os.path.abspath(version_dir)),
        "run_dir": run_dir,
        "mixed_precision": True if mixed_precision else None,
    }
    config = task.finetune_config(metadata, **{k: v for k, v in flags.items() if v is not None})
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        try:
            result = run_finetune(
                task,
                config,
                version_dir,
                metadata,
                new_head=new_head,
                freeze=freeze,
                verbose=0 if quiet else None,
                resume=resume,
            )
        except KeyboardInterrupt:
            click.echo("interrupted; run the same command again to resume", err=True)
            sys.exit(130)
    facts = result.prepared.metadata["finetune"]
    summary = {
        "export": result.export_path,
        "run_dir": result.run_dir,
        "finetuned_from": facts["finetuned_from"],
        **{
            key: result.prepared.metadata[key]
            for key in ("labels", "source_lang", "target_lang")
            if key in result.prepared.metadata
        },
        "new_head": facts["new_head"],
        "freeze": facts["freeze"],
        "out_of_vocabulary": facts["out_of_vocabulary"],
        "metrics": result.metrics,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    if result.run_dir is None:  # a multi-worker run's worker other than the chief
        index = result.metrics["distribution"]["worker_index"]
        click.echo(f"worker {index}: training done; worker 0 writes the run and the export")
        return
    m = result.metrics
    scores = "  ".join(
        f"{name[len('val_') :]} {value:.4f}"
        for name, value in m.items()
        if name.startswith("val_") and isinstance(value, float)
    )
    oov = facts["out_of_vocabulary"]
    click.echo(f"fine-tuned {facts['finetuned_from']}")
    if "total" in oov:  # sentiment: one word vocabulary
        click.echo(f"out of vocabulary: {100 * oov['share']:.1f}% of {oov['total']} tokens")
    for side, coverage in oov.items():  # translation, captioning: WordPiece per side
        if isinstance(coverage, dict):
            known = coverage.get("training_pieces_per_word")
            click.echo(
                f"{side}: {100 * coverage['share']:.1f}% [UNK] of {coverage['tokens']} tokens, "
                f"{100 * coverage['split_words']:.1f}% of words split, "
                f"{coverage['pieces_per_word']:.2f} pieces per word"
                + (f" (training data: {known:.2f})" if known else "")
            )
    click.echo(f"validation: {scores}  ({m['epochs_run']} epochs, {m['train_seconds']:.0f} s)")
    if result.export_path:
        click.echo(f"exported {result.export_path}")
    click.echo(f"run directory {result.run_dir}")


@cli.command("plot-attention")
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
    if not hasattr(task, "plot_attention"):
        raise UserError(
            f"{version_dir}: plot-attention needs a translation model; this is a {task.name} model"
        )
    result = task.plot_attention(version_dir, metadata, sentence, output)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        click.echo(result["translation"])
        click.echo(f"wrote {output}")


@cli.command("plot-captions")
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
    if not hasattr(task, "plot_captions"):
        raise UserError(
            f"{version_dir}: plot-captions needs a captioning model; this is a {task.name} model"
        )
    result = task.plot_captions(version_dir, metadata, list(images), output, attention)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        for row in result["captions"]:
            click.echo(f"{row['caption']}\t{row['image']}")
        click.echo(f"wrote {output}")


def _parse_labels(values: tuple[str, ...]) -> dict:
    labels = {}
    for value in values:
        model, _, rest = value.partition(":")
        label, _, version = rest.partition("=")
        if not (model and label and version.isdigit()):
            raise click.BadParameter(
                f"{value!r}: expected MODEL:LABEL=VERSION, e.g. sentiment:stable=1"
            )
        labels[(model, label)] = int(version)
    return labels


@cli.command()
@click.argument("root", type=click.Path())
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0: all)."
)
@click.option("--port", type=click.IntRange(0, 65535), default=8501, show_default=True)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=10 * 1024 * 1024,
    show_default=True,
    help="Larger request bodies get 413.",
)
@click.option(
    "--max-concurrent-requests",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Most connections served at once (idle keep-alive ones count); a request on "
    "one more gets 503 Service Unavailable.",
)
@click.option(
    "--max-batch-size",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Most examples per model call; a request with more gets 400.",
)
@click.option(
    "--max-text-length",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Most characters per text value; a longer one gets 400.",
)
@click.option(
    "--batch-timeout-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Extra wait for more requests before a model call. Requests that arrive while "
    "the model is busy share its next call anyway, so 0 batches under load without "
    "delaying a lone request.",
)
@click.option(
    "--poll-seconds",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="How often ROOT is scanned for new versions (0: never).",
)
@click.option(
    "--num-versions",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Newest versions of each model kept loaded (older ones are unloaded).",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    help="MODEL:LABEL=VERSION for /v1/models/MODEL/labels/LABEL URLs (repeatable); "
    "the version is loaded besides the --num-versions newest.",
)
@_reports_user_errors
def serve(
    root,
    host,
    port,
    max_body_bytes,
    max_concurrent_requests,
    max_batch_size,
    max_text_length,
    batch_timeout_ms,
    poll_seconds,
    num_versions,
    labels,
):
    """Serve every export under ROOT (ROOT/NAME/VERSION/) with TF Serving's REST API.

    \b
      python cli.py serve saved_models --port 8501
      curl -s localhost:8501/v1/models/sentiment
      curl -s -X POST localhost:8501/v1/models/sentiment:predict \\
          -d '{"instances": ["great film", "dull"]}'

    The newest version of each model is served; new versions are picked up while
    running. The API description is at /openapi.json (and /docs).
    """
    from seqtasks.errors import ConfigError

    if not os.path.isdir(root):
        raise ConfigError(f"{root}: no such folder (expected a folder of NAME/VERSION/ exports)")
    _setup_logging(quiet=False)
    from seqtasks.serving.app import ServerSettings, bind
    from seqtasks.serving.app import serve as run_server

    settings = ServerSettings(
        max_body_bytes=max_body_bytes,
        max_concurrent_requests=max_concurrent_requests,
        max_batch_size=max_batch_size,
        max_text_length=max_text_length,
        batch_timeout_ms=batch_timeout_ms,
        poll_seconds=poll_seconds,
        num_versions=num_versions,
        labels=_parse_labels(labels),
    )
    sock = bind(host, port)  # before the models load, so that a busy port fails at once
    run_server(sock, root, settings)


@cli.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@_reports_user_errors
def recipes(name, as_json):
    """List the recipes and their models, or the config fields of recipe NAME.

    \b
    Examples:
      python cli.py recipes
      python cli.py recipes sentiment        # every --set KEY with type, default and help
    """
    from tasks import RECIPES, get_recipe

    if name is None:
        rows = [
            {
                "name": r.name,
                "task_type": r.task_type,
                "description": r.description,
                "models": r.models,
            }
            for r in RECIPES.values()
        ]
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for row in rows:
            click.echo(f"{row['name']} ({row['task_type']}): {row['description']}")
            for model, about in row["models"].items():
                click.echo(f"  --model {model:<14} {about}")
        return
    recipe = get_recipe(name)
    fields = recipe.make_config().describe()
    if as_json:
        click.echo(json.dumps(fields, indent=2, default=str))
        return
    click.echo(f"{recipe.name} ({recipe.task_type}): set with --set KEY=VALUE")
    for field in fields:
        extra = ""
        if "choices" in field:
            extra = f" [{'|'.join(field['choices'])}]"
        click.echo(f"  {field['name']:<18} {field['type']:<12} default {field['default']!r}{extra}")
        click.echo(f"      {field['help']}")


def main(args: list[str] | None = None) -> int:
    """Run the CLI; click's usage errors become one ``error:`` line too. Returns the exit status."""
    try:
        cli.main(args, prog_name="cli.py", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.format_message(), err=True)
        return EXIT_USER_ERROR
    except click.ClickException as e:  # bad option value, unknown option, missing argument
        ctx = getattr(e, "ctx", None)
        hint = f" (see: python {ctx.command_path} --help)" if ctx else ""
        click.echo(f"error: {e.format_message()}{hint}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    import signal

    from seqtasks.native_logs import filter_native_logs

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `predict ... | head` ends quietly
    filter_native_logs()
    sys.exit(main())
