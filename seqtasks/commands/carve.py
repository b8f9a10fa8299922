"""``cli.py carve``: write the validation split ``train`` would hold out, before training.

Pretraining a language model for a classifier (``train sentiment --init-from``) must not
read the classifier's validation texts: ``carve`` writes them, and the language-model
recipe's ``exclude_texts`` leaves them out of its training text.
"""

from __future__ import annotations

import json
import os

import click

from seqtasks.commands.common import _data_options, _given, _reports_user_errors, _setup_logging
from seqtasks.errors import UserError


@click.command()
@click.argument("recipe")
@click.option("--data", help="The labelled data `train RECIPE --data` would read.")
@click.option("--seed", type=int, help="The seed `train` would use (default the recipe's).")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="JSON Lines file to write: one {\"text\", \"label\"[, \"group\"]} object per "
    "validation example, in data order.",
)
@_data_options
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Config fields that shape the split, as for `train` (validation_split, "
    "grouped_validation, group_column, max_examples).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@_reports_user_errors
def carve(recipe, data, seed, output, assignments, as_json, **data_options):
    """Write the validation examples `train RECIPE` holds out with the same settings.

    The split is the one training uses: for aclImdb data, whole movies held out
    (seeded); for a file with a group column (--set group_column=NAME), whole
    groups; otherwise a seeded share of the examples.

    \b
    Example: pretrain on IMDB text without the classifier's validation reviews
      python cli.py carve sentiment --data ../shared/data/imdb/aclImdb_v1_train.tar.gz \\
          -o runs/imdb-validation.jsonl
      python cli.py train language-model --data ../shared/data/imdb --tokenizer word \\
          --set exclude_texts=runs/imdb-validation.jsonl
    """
    _setup_logging(quiet=as_json)
    from seqtasks.config import parse_assignments
    from tasks.registry import entry

    known = entry(recipe)
    if "carve" not in known.extra_commands:
        raise UserError(f"carve: the {recipe} recipe has no validation carve to write")
    overrides = parse_assignments(assignments)
    overrides.update({"data": data, "seed": seed, **_given(data_options)})
    config = known.make_config(**{k: v for k, v in overrides.items() if v is not None})
    known.check_training_data(config)
    task = known.recipe_class()()
    dataset = task.load_data(config)
    train_idx, val_idx = task.carve(config, dataset)
    tmp = output + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as f:
        for i in val_idx:
            row = {"text": dataset.texts[i], "label": dataset.labels[i]}
            if dataset.groups is not None:
                row["group"] = dataset.groups[i]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, output)
    groups = dataset.groups if config.grouped_validation else None
    summary = {
        "output": output,
        "train_examples": len(train_idx),
        "validation_examples": len(val_idx),
        "validation_groups": len({groups[i] for i in val_idx}) if groups is not None else None,
        "seed": config.seed,
        "validation_split": config.validation_split,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    held = (
        f" of {summary['validation_groups']} held-out groups"
        if summary["validation_groups"] is not None
        else " carved at random"
    )
    click.echo(
        f"wrote {len(val_idx)} validation examples{held} to {output} "
        f"({len(train_idx)} left for training)"
    )
