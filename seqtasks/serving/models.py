"""The models a server serves: every ``<root>/<name>/<version>/`` SavedModel.

:class:`Registry` scans the root (at start and then every ``poll_seconds``), keeps the
newest ``num_versions`` versions of each model that load loaded, plus the versions
that labels name, and unloads the others. A version that fails to load (no
``saved_model.pb``, corrupt graph, unknown requirement) is reported in the model's
status with the reason and is not retried until its files change; the model's older
good version, if any, keeps serving, and other models are not affected.

Loading uses ``tf.saved_model.load`` only: graphs and weights, no pickle, no Keras
objects, no Python code from the model folder. The only modules imported on an
export's behalf are those in :data:`KNOWN_REQUIREMENTS` (``tensorflow_text`` for the
WordPiece ops of translation and captioning exports).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import re
from dataclasses import dataclass, field

import numpy as np

from seqtasks.errors import ExportError
from seqtasks.export import METADATA_FILE, read_metadata
from seqtasks.serving.batching import Batcher
from seqtasks.serving.codec import TensorInfo

log = logging.getLogger(__name__)

# A model name: a folder name made of letters, digits, '_', '-', '.', not starting with '.'.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# A version: a non-negative integer folder name (TF Serving reads any int64 folder name).
VERSION_PATTERN = re.compile(r"[0-9]{1,18}")
# metadata "requires" entry -> module imported before loading (None: nothing to import)
KNOWN_REQUIREMENTS = {"tensorflow": None, "tensorflow_text": "tensorflow_text"}


def valid_name(name: str) -> bool:
    """Whether ``name`` can be a model name (no path separators, no ``..``)."""
    return bool(NAME_PATTERN.fullmatch(name))


@dataclass
class Signature:
    """A loaded signature: its function and its inputs and outputs by name."""

    fn: object
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    method_name: str = "tensorflow/serving/predict"


def _tensor_info(spec, tensor_name: str = "") -> TensorInfo:
    from tensorflow.core.framework import types_pb2

    shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
    proto = types_pb2.DataType.Name(spec.dtype.as_datatype_enum)
    return TensorInfo(spec.dtype.name, shape, proto_dtype=proto, tensor_name=tensor_name)


def describe_signature(fn, signature_def=None) -> Signature:
    """Input and output names, dtypes and shapes of a SavedModel signature function.

    ``signature_def`` (the SignatureDef protobuf, optional) adds the graph tensor names
    and the method name that TF Serving's metadata API reports.
    """
    _, kwargs = fn.structured_input_signature
    outputs = fn.structured_outputs
    names_in = {k: v.name for k, v in signature_def.inputs.items()} if signature_def else {}
    names_out = {k: v.name for k, v in signature_def.outputs.items()} if signature_def else {}
    return Signature(
        fn=fn,
        inputs={n: _tensor_info(spec, names_in.get(n, "")) for n, spec in sorted(kwargs.items())},
        outputs={
            n: _tensor_info(spec, names_out.get(n, "")) for n, spec in sorted(outputs.items())
        },
        method_name=(signature_def.method_name if signature_def else "")
        or "tensorflow/serving/predict",
    )


def _signature_defs(path: str) -> dict:
    """The SignatureDef protobufs of ``path/saved_model.pb`` by key ({} if unreadable)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    try:
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            saved_model.ParseFromString(f.read())
    except Exception:  # already loaded by TensorFlow; the names are only informative
        return {}
    if not saved_model.meta_graphs:
        return {}
    return dict(saved_model.meta_graphs[0].signature_def)


def _stamp(path: str) -> tuple:
    """Changes when a version folder's files change (to retry a failed load)."""
    stamp = []
    files = ("saved_model.pb", METADATA_FILE, os.path.join("variables", "variables.index"))
    for name in ("", *files):
        try:
            stamp.append(os.stat(os.path.join(path, name)).st_mtime_ns)
        except OSError:
            stamp.append(None)
    return tuple(stamp)


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


class LoadedVersion:
    """One loaded version of a model: its signatures, metadata and worker thread.

    Every TensorFlow call for this version runs in its single worker thread, one at
    a time; requests reach it through one :class:`Batcher` per signature.
    """

    def __init__(self, name: str, version: int, path: str):
        self.name = name
        self.version = version
        self.path = path
        self.stamp = _stamp(path)
        self.metadata = self._read_metadata()
        self._import_requirements()
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise ExportError(f"{path}: no saved_model.pb")
        import tensorflow as tf

        try:
            self.loaded = tf.saved_model.load(path)
        except Exception as e:  # corrupt, incompatible or needing unregistered ops
            raise ExportError(f"{path}: cannot load the SavedModel: {_first_line(e)}") from None
        defs = _signature_defs(path)
        self.signatures = {
            key: describe_signature(fn, defs.get(key))
            for key, fn in sorted(self.loaded.signatures.items())
        }
        if not self.signatures:
            raise ExportError(f"{path}: the SavedModel has no signatures")
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"{name}-{version}"
        )
        self.batchers: dict[str, Batcher] = {}

    def _read_metadata(self) -> dict:
        if os.path.isfile(os.path.join(self.path, METADATA_FILE)):
            return read_metadata(self.path)
        return {}  # a plain SavedModel (not written by seqtasks) is served too

    def _import_requirements(self) -> None:
        requires = self.metadata.get("requires", [])
        if not isinstance(requires, list):
            raise ExportError(f"{self.path}: metadata 'requires' must be a list of module names")
        for module in requires:
            if module not in KNOWN_REQUIREMENTS:
                known = ", ".join(sorted(KNOWN_REQUIREMENTS))
                raise ExportError(
                    f"{self.path}: metadata requires {module!r}, which the server does not "
                    f"import (known: {known})"
                )
            if KNOWN_REQUIREMENTS[module]:
                __import__(KNOWN_REQUIREMENTS[module])

    def run(self, signature_name: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Call a signature on NumPy inputs; returns NumPy outputs (call in the worker thread)."""
        import tensorflow as tf

        signature = self.signatures[signature_name]
        tensors = {
            name: tf.constant(value, dtype=signature.fn.structured_input_signature[1][name].dtype)
            for name, value in arrays.items()
        }
        outputs = signature.fn(**tensors)
        return {name: tensor.numpy() for name, tensor in outputs.items()}

    def batcher(self, signature_name: str, max_batch_size: int, timeout: float) -> Batcher:
        """The batcher of one signature, made on first use (call on the event loop)."""
        batcher = self.batchers.get(signature_name)
        if batcher is None:
            batcher = self.batchers[signature_name] = Batcher(
                lambda arrays: self.run(signature_name, arrays),
                self.executor,
                max_batch_size,
                timeout,
            )
        return batcher

    def close(self) -> None:
        """Stop the batchers once their queued requests are answered (on the event loop)."""
        for batcher in self.batchers.values():
            batcher.close()


@dataclass
class Failure:
    """A version that did not load, and why."""

    stamp: tuple
    message: str


@dataclass
class Model:
    """One model's loaded versions (newest first) and its failed versions."""

    loaded: dict[int, LoadedVersion] = field(default_factory=dict)
    failed: dict[int, Failure] = field(default_factory=dict)


class Registry:
    """The models under ``root``, scanned with :meth:`scan` and swapped in with :meth:`apply`.

    Args:
        root: folder of ``<name>/<version>/`` exports.
        num_versions: newest versions of each model kept loaded (default 1).
        labels: ``{(model, label): version}`` for ``/labels/<label>`` URLs; these
            versions are loaded too, however old (a missing one is logged once).
    """

    def __init__(self, root: str, num_versions: int = 1, labels: dict | None = None):
        self.root = root
        self.num_versions = num_versions
        self.labels = dict(labels or {})
        self.models: dict[str, Model] = {}
        self._warned: set[str] = set()

    def scan(self) -> tuple[dict[str, Model], list[LoadedVersion]]:
        """Load what is new under the root (slow; may run in a thread).

        Returns:
            ``(models, unloaded)``: the new model table and the versions it dropped.
        """
        current = self.models
        models: dict[str, Model] = {}
        found: dict[str, set[int]] = {}  # versions under each model folder
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except OSError as e:
            log.error("cannot list %s: %s", self.root, e)
            return current, []
        for entry in entries:
            if not entry.is_dir() or entry.name.startswith("."):
                continue
            if not valid_name(entry.name):
                self._warn(
                    entry.name, "%s: not served (model names use letters, digits, _ - .)", entry
                )
                continue
            folders = {}
            for sub in os.scandir(entry.path):
                if sub.is_dir() and VERSION_PATTERN.fullmatch(sub.name):
                    folders[int(sub.name)] = sub.path
            if not folders:
                continue
            models[entry.name] = self._scan_model(
                entry.name, folders, current.get(entry.name, Model())
            )
            found[entry.name] = set(folders)
        for (name, label), version in sorted(self.labels.items()):
            key = f"{name}:{label}={version}"
            if version in found.get(name, ()):
                self._warned.discard(key)  # warn again should it go
            else:
                where = os.path.join(self.root, name, str(version))
                self._warn(key, "label %s: no folder %s (its URLs answer 404)", key, where)
        kept = {id(loaded) for model in models.values() for loaded in model.loaded.values()}
        unloaded = [
            loaded
            for model in current.values()
            for loaded in model.loaded.values()
            if id(loaded) not in kept
        ]
        return models, unloaded

    def _warn(self, key: str, message: str, *args) -> None:
        """Log a warning once per ``key`` (scans repeat every ``poll_seconds``)."""
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def _scan_model(self, name: str, folders: dict[int, str], old: Model) -> Model:
        model = Model()
        labelled = {v for (m, _), v in self.labels.items() if m == name}
        for version in sorted(folders, reverse=True):
            path = folders[version]
            stamp = _stamp(path)
            previous = old.loaded.get(version)
            failure = old.failed.get(version)
            if len(model.loaded) >= self.num_versions and version not in labelled:
                if failure is not None:
                    model.failed[version] = failure
                continue
            if previous is not None and previous.stamp[1:] == stamp[1:]:
                model.loaded[version] = previous
                continue
            if failure is not None and failure.stamp == stamp:
                model.failed[version] = failure
                continue
            try:
                model.loaded[version] = LoadedVersion(name, version, path)
            except Exception as e:  # one broken export never stops the others
                message = str(e) if isinstance(e, ExportError) else f"{path}: {_first_line(e)}"
                model.failed[version] = Failure(stamp, message)
                log.warning("model %s version %d not loaded: %s", name, version, message)
            else:
                log.info(
                    "model %s version %d loaded (%s; signatures %s)",
                    name,
                    version,
                    model.loaded[version].metadata.get("task", "plain SavedModel"),
                    ", ".join(model.loaded[version].signatures),
                )
        return model

    def apply(self, models: dict[str, Model], unloaded: list[LoadedVersion]) -> None:
        """Swap in a scan's result; close the dropped versions (on the event loop)."""
        self.models = models
        for version in unloaded:
            log.info("model %s version %d unloaded", version.name, version.version)
            version.close()

    def resolve(self, name: str, version: int | None = None, label: str | None = None):
        """The loaded version a request names.

        Raises:
            LookupError: with TF Serving's message when nothing matches.
        """
        model = self.models.get(name)
        if label is not None:
            if (name, label) not in self.labels:
                raise LookupError(f"Unrecognized servable version label: {label}")
            version = self.labels[(name, label)]
        if model is None or not model.loaded:
            spec = "Latest" if version is None else f"Specific({name}, {version})"
            raise LookupError(
                f"Servable not found for request: {spec}" + (f"({name})" if version is None else "")
            )
        if version is None:
            return model.loaded[max(model.loaded)]
        if version not in model.loaded:
            raise LookupError(f"Servable not found for request: Specific({name}, {version})")
        return model.loaded[version]
