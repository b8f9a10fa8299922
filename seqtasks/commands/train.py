"""``cli.py train``: train a recipe, evaluate on held-out data, export."""

from __future__ import annotations

import contextlib
import json
import sys

import click

from seqtasks.commands.common import (
    _caption_options,
    _data_options,
    _given,
    _mixed_precision_option,
    _parallel_options,
    _reports_user_errors,
    _setup_logging,
    echo_other_worker,
    validation_line,
)


@click.command()
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
    "--tokenizer",
    type=click.Choice(["char", "word", "wordpiece"]),
    help="Language model: char (default), word or wordpiece (learned from the text).",
)
@click.option(
    "--beam-size", type=int, help="Translation, captioning: beam size of evaluation and the export."
)
@click.option(
    "--preset",
    metavar="NAME",
    help="Start from a named published setting (see `recipes RECIPE`); flags and --set "
    "override its values.",
)
@click.option(
    "--average-last",
    type=int,
    metavar="N",
    help="Export the mean of the weights of the N epochs ending at the best one by "
    "validation loss (checkpoint averaging; 0 or 1: the best epoch's).",
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
    "--init-embeddings",
    metavar="word2vec|PATH|none",
    help="Sentiment: start the embedding layer from word vectors: word2vec learns them "
    "(gensim) from the training split plus --unlabeled-data, never from validation (the "
    "IMDB command of the README); PATH reads a word2vec-format file (.txt/.vec, .bin) of "
    "embedding_dim dimensions; none (default) starts from random vectors.",
)
@click.option(
    "--init-from",
    metavar="MODEL",
    help="sentiment: start from a language model (an export or run directory of `train "
    "language-model`): its tokenizer, vocabulary, embeddings and recurrent layers or "
    "Transformer blocks, with a new head; --model follows it. See docs/sentiment.md.",
)
@click.option(
    "--unlabeled-data",
    metavar="PATH",
    help="Sentiment, with --init-embeddings word2vec: unlabeled text for the vectors (a .txt, "
    "a records file, a .tar.gz of .txt documents such as IMDB's unsup archive, a folder).",
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
    tokenizer,
    beam_size,
    preset,
    average_last,
    multi_label,
    label_separator,
    init_embeddings,
    init_from,
    unlabeled_data,
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
      python cli.py train sentiment --data ../shared/data/imdb/aclImdb_v1_train.tar.gz \\
          --init-embeddings word2vec
      python cli.py train sentiment --data my.csv --init-from saved_models/language-model
      python cli.py train translation --data ../shared/data/multi30k --source-lang en \\
          --target-lang de
      python cli.py train translation --data ../shared/data/multi30k --source-lang en \\
          --target-lang de --preset wu2021-multi30k --epochs 40
      python cli.py train translation --data ../shared/data/anki/spa-eng.zip \\
          --source-lang en --target-lang es --model rnn-attention
      python cli.py train translation --data pairs.jsonl --source-column english \\
          --target-column german --on-bad-rows skip
      KERAS_HOME=../shared/keras_home python cli.py train captioning \\
          --data ../shared/data/flickr8k
      python cli.py train captioning --data photos.csv --image-dir photos/ --set encoder=cnn
      python cli.py train captioning --data photos.parquet --image-column file \\
          --caption-column text --on-bad-rows skip
      python cli.py train language-model --data ../shared/data/tinyshakespeare/train.txt \\
          --tokenizer char
      python cli.py train language-model --data ../shared/data/imdb --tokenizer wordpiece
    """
    _setup_logging(quiet)
    from seqtasks.config import parse_assignments
    from tasks.registry import entry

    # Every check that needs no TensorFlow first: a mistake answers in well under a second.
    known = entry(recipe)
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
        "tokenizer": tokenizer,
        "beam_size": beam_size,
        "average_last": average_last,
        "multi_label": True if multi_label else None,
        "label_separator": label_separator,
        "init_embeddings": init_embeddings,
        "init_from": init_from,
        "unlabeled_data": unlabeled_data,
        "mixed_precision": True if mixed_precision else None,
    }
    overrides.update({k: v for k, v in flags.items() if v is not None})
    from tasks.presets import with_preset

    overrides = with_preset(known.name, preset, overrides)
    config = known.make_config(**overrides)
    known.check_training_data(config)
    if getattr(config, "init_from", None):
        from tasks.sentiment_config import resolve_init_from

        config = resolve_init_from(config, model_given="model" in overrides)
    from seqtasks.training import train as run_training  # imports TensorFlow

    task = known.recipe_class()()
    # With --json, stdout carries only the JSON result: progress goes to stderr.
    from seqtasks.training.interrupt import quit_after_stop

    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        try:
            with quit_after_stop():  # the CLI ends after an interrupt: a 2nd Ctrl-C quits
                result = run_training(
                    task, config, verbose=0 if quiet else None, resume=resume, strategy=strategy
                )
        except KeyboardInterrupt as e:  # says what the run dir keeps; exits 130 at once
            from seqtasks.training.interrupt import report_interrupt

            report_interrupt(e)
    summary = {"export": result.export_path, "run_dir": result.run_dir, "metrics": result.metrics}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    if echo_other_worker(result):
        return
    click.echo(validation_line(result.metrics))
    if result.export_path:
        click.echo(f"exported {result.export_path}")
    else:
        click.echo(f"not exported (needs KERAS_BACKEND=tensorflow); model in {result.run_dir}")
    click.echo(f"run directory {result.run_dir}")
