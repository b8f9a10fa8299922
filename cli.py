#!/usr/bin/env python
"""seqtasks command line: train, evaluate, predict with sequence-model recipes.

This file only assembles the commands (one module each in ``seqtasks/commands/``:
parse, call seqtasks, print); the logic lives in ``seqtasks/`` and ``tasks/``. A user error (bad data, unknown option value, a
folder that is not an export) prints one ``error: ...`` line on stderr and
exits with status 2.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import click  # noqa: E402

from seqtasks.commands import (  # noqa: E402
    carve,
    finetune,
    generate,
    inference,
    plots,
    recipes,
    serve,
    train,
)
from seqtasks.commands.common import EXIT_USER_ERROR  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name=None, version=__import__("seqtasks").__version__)
def cli():
    """seqtasks: train, export and serve sequence models with one command.

    \b
    python cli.py recipes
    python cli.py train sentiment --data ../shared/data/imdb/aclImdb_v1_train.tar.gz
    python cli.py predict saved_models/sentiment "A moving, beautifully acted film."
    python cli.py evaluate saved_models/sentiment --data ../shared/data/sst2/dev.tsv --json
    python cli.py train language-model --data ../shared/data/tinyshakespeare/train.txt
    python cli.py generate saved_models/language-model "ROMEO:" --seed 1
    """


for command in (
    train.train,
    carve.carve,
    inference.predict,
    inference.evaluate,
    generate.generate,
    finetune.finetune,
    plots.plot_attention,
    plots.plot_captions,
    plots.plot_runs,
    serve.serve,
    recipes.recipes,
):
    cli.add_command(command)


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
