"""``cli.py generate``: text from a language-model export, with decoding settings per call."""

from __future__ import annotations

import json

import click

from seqtasks.commands.common import (
    _read_export,
    _read_inputs,
    _reports_user_errors,
    _setup_logging,
)
from seqtasks.errors import UserError


@click.command()
@click.argument("model_dir", type=click.Path())
@click.argument("prompts", nargs=-1)
@click.option(
    "--num-samples",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Texts generated per prompt (sample j uses seed + j).",
)
@click.option(
    "--max-length",
    type=click.IntRange(min=1),
    help="New tokens at most per text (default: the export's, see its metadata).",
)
@click.option(
    "--temperature",
    type=click.FloatRange(min=0.0, min_open=True),
    help="Sampling temperature, > 0 (default: the export's); lower is more conservative.",
)
@click.option(
    "--top-k", type=click.IntRange(min=0), help="Sample among the k most probable tokens (0 = all)."
)
@click.option(
    "--top-p",
    type=click.FloatRange(min=0.0, max=1.0, min_open=True),
    help="Nucleus sampling (Holtzman et al. 2020): the smallest set of tokens of this "
    "probability, in (0, 1] (1 = all).",
)
@click.option(
    "--seed", type=click.IntRange(min=0), help="Sampling seed (default 0): same seed, same text."
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per text, with its score and per-token log-probabilities.",
)
@_reports_user_errors
def generate(model_dir, prompts, num_samples, max_length, temperature, top_k, top_p, seed, as_json):
    """Continue each PROMPT with a language-model export (train language-model).

    With no PROMPT the model generates from [START]; - reads one prompt per line from
    stdin. Sampling is stateless and seeded: the same prompt, settings and seed give
    the same text, alone or among other prompts. A prompt longer than the model's
    context keeps its last tokens (a warning says so). Output: the prompt followed by
    its continuation, one text per block; --json gives each text's score (mean
    log-probability per generated token) and per-token log-probabilities.

    \b
    Examples:
      python cli.py generate saved_models/language-model "ROMEO:" --max-length 300 \\
          --temperature 0.8 --top-p 0.95 --seed 1
      python cli.py generate saved_models/language-model --num-samples 3 --json
    """
    _setup_logging(quiet=True)
    inputs = _read_inputs(prompts) if prompts else [""]
    version_dir, metadata, known = _read_export(model_dir)  # no TensorFlow yet
    if "generate" not in known.extra_commands:
        raise UserError(
            f"{version_dir}: generate needs a language-model model; this is a {known.name} model"
        )
    task = known.recipe_class()()  # imports TensorFlow
    results = task.generate(
        version_dir,
        metadata,
        inputs,
        num_samples=num_samples,
        max_length=max_length,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
    )
    for i, result in enumerate(results):
        if as_json:
            click.echo(json.dumps(result, ensure_ascii=False))
        else:
            click.echo(("" if i == 0 else "\n") + result["prompt"] + result["text"])
