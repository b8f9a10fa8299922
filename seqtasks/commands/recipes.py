"""``cli.py recipes``: the recipes, their models and config fields."""

from __future__ import annotations

import json

import click

from seqtasks.commands.common import (
    _reports_user_errors,
)


@click.command()
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
    from tasks.registry import ENTRIES, entry

    if name is None:
        rows = [
            {
                "name": r.name,
                "task_type": r.task_type,
                "description": r.description,
                "models": r.models,
            }
            for r in ENTRIES.values()
        ]
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for row in rows:
            click.echo(f"{row['name']} ({row['task_type']}): {row['description']}")
            for model, about in row["models"].items():
                click.echo(f"  --model {model:<14} {about}")
        return
    from tasks.presets import presets

    recipe = entry(name)
    fields = recipe.make_config().describe()
    if as_json:
        click.echo(json.dumps(fields, indent=2, default=str))
        return
    for preset, about in presets(recipe.name).items():
        settings = " ".join(f"{k}={v}" for k, v in about["settings"].items())
        click.echo(f"--preset {preset}: {about['description']}\n    {settings}")
    click.echo(f"{recipe.name} ({recipe.task_type}): set with --set KEY=VALUE")
    for field in fields:
        extra = ""
        if "choices" in field:
            extra = f" [{'|'.join(field['choices'])}]"
        click.echo(f"  {field['name']:<18} {field['type']:<12} default {field['default']!r}{extra}")
        click.echo(f"      {field['help']}")
