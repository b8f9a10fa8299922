"""``cli.py finetune``: continue training an export on new data; export the next version."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys

import click

from seqtasks.commands.common import (
    _caption_options,
    _data_options,
    _given,
    _mixed_precision_option,
    _parallel_options,
    _read_export,
    _reports_user_errors,
    _setup_logging,
    echo_other_worker,
    validation_line,
)
from seqtasks.errors import UserError

log = logging.getLogger(__name__)


@click.command()
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

    from tasks.registry import check_data_path

    # Every check that needs no TensorFlow first: a mistake answers in well under a second.
    version_dir, metadata, known = _read_export(model_dir)
    if not data and not data_options.get("source_file"):
        raise UserError("no data: pass --data PATH (the new training data)")
    fields = {f.name for f in dataclasses.fields(known.config_class)}
    options = _given(data_options)
    if split is not None:
        options["split"] = split
    foreign = sorted("--" + field.replace("_", "-") for field in options if field not in fields)
    if foreign:
        raise UserError(
            f"{', '.join(foreign)}: {'does' if len(foreign) == 1 else 'do'} not apply to "
            f"{known.name} models"
        )
    if not (data_options.get("source_file") or data_options.get("target_file")):
        check_data_path(data)
    source_folder = os.path.dirname(os.path.abspath(version_dir))
    if new_head and (
        export_dir is None or os.path.abspath(export_dir) == os.path.abspath(source_folder)
    ):
        log.warning(
            "--new-head: the new version goes to %s, the source model's folder: clients "
            "serving that folder will get the new labels from its newest version; pass "
            "--export-dir DIR to export it elsewhere",
            source_folder,
        )
    from seqtasks.training import finetune as run_finetune  # imports TensorFlow

    task = known.recipe_class()()
    flags = {
        "data": data,
        **options,
        "epochs": epochs,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "max_examples": max_examples,
        "seed": seed,
        "export_dir": export_dir or source_folder,
        "run_dir": run_dir,
        "mixed_precision": True if mixed_precision else None,
    }
    config = task.finetune_config(metadata, **{k: v for k, v in flags.items() if v is not None})
    from seqtasks.training.interrupt import quit_after_stop

    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        try:
            with quit_after_stop():  # the CLI ends after an interrupt: a 2nd Ctrl-C quits
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
        except KeyboardInterrupt as e:  # says what the run dir keeps; exits 130 at once
            from seqtasks.training.interrupt import report_interrupt

            report_interrupt(e)
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
    if echo_other_worker(result):
        return
    oov = facts["out_of_vocabulary"]
    click.echo(f"fine-tuned {facts['finetuned_from']}")
    if "unknown_share" in oov:  # language model: one vocabulary of its tokenizer
        click.echo(
            f"new text: {100 * oov['unknown_share']:.2f}% [UNK] tokens, "
            f"{oov['tokens_per_word']:.2f} tokens per word"
        )
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
    click.echo(validation_line(result.metrics))
    if result.export_path:
        click.echo(f"exported {result.export_path}")
    click.echo(f"run directory {result.run_dir}")
