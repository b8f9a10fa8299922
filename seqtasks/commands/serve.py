"""``cli.py serve``: every export under a folder behind TF Serving's REST API."""

from __future__ import annotations

import os

import click

from seqtasks.commands.common import (
    _reports_user_errors,
    _setup_logging,
)


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


@click.command()
@click.argument("root", type=click.Path())
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0: all)."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8501,
    show_default=True,
    help="Port to listen on (0: any free one; the log names the one taken).",
)
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
    running. The API description is at /openapi.json, to browse at /docs (Swagger UI)
    or /redoc; both pages work offline.
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
