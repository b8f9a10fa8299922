"""SavedModel exports in the TF Serving layout, written atomically.

An export of model ``<name>`` lives in ``<export_dir>/<version>/`` with an
integer version (1, 2, ...; TF Serving serves the highest)::

    saved_model.pb, variables/       the serving graph and weights
    assets/vocabulary.txt            vocabularies used inside the graph
    assets.extra/metadata.json       task, labels, model, metrics, config, versions
    assets.extra/model.keras         the Keras model, for fine-tuning
    assets.extra/...                 other files a recipe needs to continue training

A version is first written to a hidden ``.tmp-*`` folder beside it and renamed
into place when complete, so an interrupted export never leaves a folder that
looks like a finished version (TF Serving ignores non-integer names).

Writing needs the TensorFlow backend; reading (:func:`resolve_export`,
:func:`read_metadata`) needs only the standard library.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable

from seqtasks.errors import ExportError
from seqtasks.io import write_json_atomic

METADATA_FILE = os.path.join("assets.extra", "metadata.json")
EXPORT_FORMAT = "seqtasks-export"
# The export format's version, stored in every export's metadata (``format_version``):
# 1: up to commit 7e8929e; translation and captioning exports hold the Keras classes
#    RNNAttentionSeq2Seq / TransformerSeq2Seq / RNNCaptioner / TransformerCaptioner
#    (``assets.extra/*.keras``), which seqtasks.models.legacy loads and converts.
# 2: those models are seqtasks.models.composed.EncoderDecoder (an encoder layer and a
#    decoder layer); the SavedModel signatures and the metadata keys are unchanged.
EXPORT_FORMAT_VERSION = 2
REQUIRED_METADATA = ("task", "task_type", "model", "signature")


def versions(export_dir: str) -> list[int]:
    """Integer version folders in ``export_dir`` that hold a ``saved_model.pb``, ascending."""
    if not os.path.isdir(export_dir):
        return []
    found = []
    for entry in os.scandir(export_dir):
        if entry.is_dir() and entry.name.isdigit():
            if os.path.isfile(os.path.join(entry.path, "saved_model.pb")):
                found.append(int(entry.name))
    return sorted(found)


def resolve_export(path: str) -> str:
    """The version folder meant by ``path``.

    Args:
        path: a model's base folder (its newest version is used) or a
            version folder itself.

    Returns:
        Path of a folder holding ``saved_model.pb`` and the seqtasks metadata.

    Raises:
        ExportError: if ``path`` does not exist or is not a seqtasks export.
    """
    if not os.path.exists(path):
        raise ExportError(f"{path}: no such model folder")
    if not os.path.isdir(path):
        raise ExportError(f"{path}: a file, not a model folder (expected an export's folder)")
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        found = versions(path)
        if not found:
            raise ExportError(
                f"{path}: not a seqtasks export (expected saved_model.pb here or in "
                f"integer version folders such as {os.path.join(path, '1')})"
            )
        path = os.path.join(path, str(found[-1]))
    if not os.path.isfile(os.path.join(path, METADATA_FILE)):
        raise ExportError(f"{path}: a SavedModel, but not a seqtasks export (no {METADATA_FILE})")
    return path


def extra_files(version_dir: str, names, purpose: str) -> list[str]:
    """Paths of the files ``names`` in an export's ``assets.extra/`` (its Keras models and
    vocabularies, which fine-tuning and plots need besides the SavedModel).

    Raises:
        ExportError: ``"<version_dir>: cannot <purpose>: the export lacks <path>"`` for the
            first missing file.
    """
    paths = [os.path.join(version_dir, "assets.extra", name) for name in names]
    for path in paths:
        if not os.path.isfile(path):
            raise ExportError(f"{version_dir}: cannot {purpose}: the export lacks {path}")
    return paths


def read_metadata(version_dir: str) -> dict:
    """The metadata JSON of an export version folder.

    Raises:
        ExportError: if the file is missing, not valid JSON, not seqtasks
            metadata, or lacks one of ``REQUIRED_METADATA``.
    """
    path = os.path.join(version_dir, METADATA_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            metadata = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ExportError(f"{path}: cannot read export metadata: {e}") from None
    if not isinstance(metadata, dict) or metadata.get("format") != EXPORT_FORMAT:
        raise ExportError(
            f"{path}: not seqtasks export metadata "
            f"(expected a JSON object with format={EXPORT_FORMAT!r})"
        )
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ExportError(f"{path}: export metadata lacks {', '.join(missing)}")
    return metadata


def write_version(
    export_dir: str,
    write_saved_model: Callable[[str], None],
    metadata: dict,
    extra_files: dict[str, str | Callable[[str], None]] | None = None,
) -> str:
    """Write the next version of a model into ``export_dir``, atomically.

    Args:
        export_dir: the model's base folder (created if missing).
        write_saved_model: called with an empty temporary folder; writes the
            SavedModel there (``saved_model.pb``, ``variables/``, ``assets/``).
        metadata: JSON-serialisable dict; ``format`` and ``format_version``
            are added. Written to ``assets.extra/metadata.json``.
        extra_files: name in ``assets.extra/`` to either a path to copy or a
            callable that writes that file given its destination path.

    Returns:
        The final version folder, e.g. ``saved_models/sentiment/3``: one above
        the highest existing version (another writer finishing first only
        moves this one up).
    """
    os.makedirs(export_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=export_dir)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; servers run as other users
    from seqtasks.progress import progress

    extra_files = extra_files or {}
    try:
        # Tracing the serving graph is the slow part (seconds to a minute): one step of
        # the display, each assets.extra file another, the metadata the last.
        with progress("exporting", total=len(extra_files) + 2, unit="steps") as bar:
            write_saved_model(tmp)
            bar.update(1)
            extra = os.path.join(tmp, "assets.extra")
            os.makedirs(extra, exist_ok=True)
            for name, source in extra_files.items():
                destination = os.path.join(extra, name)
                if callable(source):
                    source(destination)
                else:
                    shutil.copyfile(source, destination)
                bar.update(1)
            full = {"format": EXPORT_FORMAT, "format_version": EXPORT_FORMAT_VERSION, **metadata}
            write_json_atomic(os.path.join(tmp, METADATA_FILE), full)
            bar.update(1)
        version = (versions(export_dir) or [0])[-1] + 1
        while True:
            final = os.path.join(export_dir, str(version))
            try:
                os.rename(tmp, final)  # atomic on one filesystem; fails if final is non-empty
                return final
            except OSError:
                if not os.path.exists(final):
                    raise
                version += 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_serving_archive(
    path: str, trackables: list, endpoint, input_signature, extra_endpoints: dict | None = None
) -> None:
    """Write a SavedModel whose ``serving_default`` signature is ``endpoint``.

    Uses ``keras.export.ExportArchive``: each of ``trackables`` (Keras models,
    ``tf.Module`` objects with lookup tables) is tracked so its variables and
    assets are saved. ``extra_endpoints`` maps further signature names to
    ``(function, input_signature)``.

    Each endpoint's Python body is traced once: an endpoint that is a ``tf.function``
    with that same input signature keeps the graph it has already traced (when
    evaluation ran it); any other is traced here, as Keras would (``autograph=False``).
    The archive gets a thin ``tf.function`` calling that concrete function, which the
    SavedModel's save traces again at little cost (given the ``tf.function`` itself,
    the save traced its whole body again in the save's context). Trackables that are
    :class:`~seqtasks.signature_module.SignatureModule` objects also keep their own
    functions (a tokenizer's) from being traced again by Keras's search for lookup
    tables (``tests/seqtasks/test_export_tracing.py`` counts the traces).

    Raises:
        ValueError: a ``tf.TensorSpec`` of a signature has no name (the signature's
            input would be called ``args_0``).
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    for trackable in trackables:
        archive.track(trackable)
    endpoints = {"serving_default": (endpoint, input_signature), **(extra_endpoints or {})}
    for name, (function, signature) in endpoints.items():
        unnamed = [spec for spec in tf.nest.flatten(list(signature)) if not spec.name]
        if unnamed:
            raise ValueError(f"signature {name!r}: every input needs a name; got {unnamed}")
        if not _traced_for(function, signature):
            function = tf.function(function, input_signature=signature, autograph=False)
        concrete = function.get_concrete_function()  # traced now unless it already was
        archive.add_endpoint(name, concrete, input_signature=signature)
    archive.write_out(path, verbose=False)


def _traced_for(function, input_signature) -> bool:
    """Whether ``function`` is a ``tf.function`` whose own input signature is
    ``input_signature`` (the same structure of equal ``tf.TensorSpec``: shapes, dtypes
    and names), so that it can be saved with the graphs it traces."""
    import tensorflow as tf

    own = getattr(function, "input_signature", None)
    if not isinstance(function, tf.types.experimental.GenericFunction) or own is None:
        return False
    try:
        tf.nest.assert_same_structure(list(own), list(input_signature))
    except (TypeError, ValueError):
        return False
    return all(
        isinstance(a, tf.TensorSpec) and a == b
        for a, b in zip(tf.nest.flatten(list(own)), tf.nest.flatten(list(input_signature)))
    )
