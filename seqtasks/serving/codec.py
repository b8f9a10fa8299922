"""TF Serving's JSON request and response formats, to and from NumPy arrays.

Follows TensorFlow Serving's RESTful API (https://www.tensorflow.org/tfx/serving/api_rest):

- row format: ``{"instances": [...]}``, one element per example; a bare value when the
  signature has one input, else an object of input name to value. Answered with
  ``{"predictions": [...]}``: one element per example, a bare value when the signature
  has one output, else an object of output name to value.
- columnar format: ``{"inputs": value | {name: value}}``, answered with
  ``{"outputs": value | {name: value}}`` (a bare value when there is one output).
- bytes: ``{"b64": "<base64>"}`` anywhere a ``DT_STRING`` value goes; outputs whose
  name ends in ``_bytes`` are answered the same way, other strings as UTF-8 text.
- ``signature_name`` picks a signature (default ``serving_default``).

Pure Python and NumPy: no TensorFlow import, so request checks stay cheap.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import numpy as np

DEFAULT_SIGNATURE = "serving_default"


class RequestError(Exception):
    """A request the server refuses, with its HTTP status (400 unless given)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of a signature: ``dtype`` a NumPy-style name (``"string"``,
    ``"float32"``, ...), ``shape`` with ``None`` for unknown sizes (``None`` for unknown rank),
    ``proto_dtype`` the DataType enum name (``"DT_STRING"``), ``tensor_name`` the graph
    tensor's name in the SignatureDef (``"serving_default_text:0"``)."""

    dtype: str
    shape: tuple[int | None, ...] | None
    proto_dtype: str = ""
    tensor_name: str = ""

    def proto_json(self, name: str) -> dict:
        """The TensorInfo protobuf's JSON form as TF Serving's metadata API writes it."""
        dtype = self.proto_dtype or "DT_" + self.dtype.upper()
        info: dict = {"dtype": dtype, "name": self.tensor_name or name}
        if self.shape is None:
            info["tensor_shape"] = {"dim": [], "unknown_rank": True}
        else:
            dims = [{"size": str(-1 if d is None else d), "name": ""} for d in self.shape]
            info["tensor_shape"] = {"dim": dims, "unknown_rank": False}
        return info


@dataclass(frozen=True)
class Limits:
    """Per-request limits: examples per request and characters per text value."""

    max_batch_size: int = 64
    max_text_length: int = 10_000


def _b64(value: dict, where: str) -> bytes:
    if set(value) != {"b64"} or not isinstance(value["b64"], str):
        raise RequestError(f'{where}: expected a string or {{"b64": "<base64 string>"}}')
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError) as e:
        raise RequestError(f"{where}: 'b64' is not valid base64 ({e})") from None


def _is_b64(value) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _strings(value, rank: int, where: str, limits: Limits) -> list:
    """Nested lists of str/{"b64"} of depth ``rank`` -> nested lists of bytes."""
    if rank == 0:
        if isinstance(value, str):
            if len(value) > limits.max_text_length:
                raise RequestError(
                    f"{where}: text of {len(value)} characters; the limit is "
                    f"{limits.max_text_length} (--max-text-length)"
                )
            return value.encode("utf-8", errors="surrogatepass")
        if isinstance(value, dict):
            return _b64(value, where)
        raise RequestError(f"{where}: expected a string, got {_json_type(value)}")
    if not isinstance(value, list):
        raise RequestError(f"{where}: expected a list (rank {rank}), got {_json_type(value)}")
    return [_strings(v, rank - 1, f"{where}[{i}]", limits) for i, v in enumerate(value)]


def _json_type(value) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _numbers(value, rank: int, dtype: str, where: str):
    if rank == 0:
        if dtype == "bool":
            if not isinstance(value, bool):
                raise RequestError(f"{where}: expected true or false, got {_json_type(value)}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RequestError(f"{where}: expected a number, got {_json_type(value)}")
        if dtype.startswith(("int", "uint")) and not (
            isinstance(value, int) or float(value).is_integer()
        ):
            raise RequestError(f"{where}: expected an integer ({dtype}), got {value!r}")
        return value
    if not isinstance(value, list):
        raise RequestError(f"{where}: expected a list (rank {rank}), got {_json_type(value)}")
    return [_numbers(v, rank - 1, dtype, f"{where}[{i}]") for i, v in enumerate(value)]


def to_array(value, spec: TensorInfo, where: str, limits: Limits) -> np.ndarray:
    """One input tensor from its JSON value (batch dimension included).

    Raises:
        RequestError: wrong type or nesting, bad base64, a text over the limit, a
            shape that does not fit ``spec`` (400).
    """
    if spec.shape is None:
        raise RequestError(f"{where}: inputs of unknown rank are not supported")
    rank = len(spec.shape)
    if spec.dtype == "string":
        nested = _strings(value, rank, where, limits)
        array = np.empty(0, dtype=object)
        try:
            array = np.array(nested, dtype=object)
        except ValueError:
            pass
        if array.ndim != rank or (rank and array.size and not isinstance(array.flat[0], bytes)):
            raise RequestError(f"{where}: ragged nested lists (expected shape {_shape(spec)})")
    else:
        nested = _numbers(value, rank, spec.dtype, where)
        try:
            array = np.array(nested, dtype=spec.dtype)
        except (ValueError, OverflowError) as e:
            raise RequestError(f"{where}: cannot make a {spec.dtype} tensor ({e})") from None
        if array.ndim != rank:
            raise RequestError(f"{where}: ragged nested lists (expected shape {_shape(spec)})")
    for axis, (size, expected) in enumerate(zip(array.shape, spec.shape)):
        if expected is not None and size != expected and not (axis > 0 and array.size == 0):
            raise RequestError(
                f"{where}: shape {list(array.shape)} does not fit {_shape(spec)} "
                f"(dimension {axis} must be {expected})"
            )
    return array


def _shape(spec: TensorInfo) -> str:
    return "[" + ", ".join("None" if d is None else str(d) for d in spec.shape) + "]"


def parse_predict(body, inputs: dict[str, TensorInfo], limits: Limits):
    """The input arrays of a parsed predict body and its format.

    Args:
        body: the decoded JSON body (any JSON value).
        inputs: the signature's inputs by name.
        limits: request limits.

    Returns:
        ``(arrays, row_format)``: input name to array, all with the same first
        dimension (the number of examples, 1 to ``limits.max_batch_size``), and
        whether the request used ``instances``.

    Raises:
        RequestError: a malformed body (an unknown or missing input is named, with
            the signature's inputs), too many examples or a text over the length
            limit (all 400).
    """
    if not isinstance(body, dict):
        raise RequestError(f"the request body must be a JSON object, got {_json_type(body)}")
    if ("instances" in body) == ("inputs" in body):
        raise RequestError("the request body must have exactly one of 'instances' or 'inputs'")
    unknown = sorted(set(body) - {"instances", "inputs", "signature_name"})
    if unknown:
        raise RequestError(
            f"unknown {_listed('key', unknown)} in the request body (it takes 'instances' "
            "or 'inputs', and optionally 'signature_name')"
        )
    names = list(inputs)
    single = len(names) == 1
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise RequestError("'instances' must be a non-empty list")
        _check_count(len(instances), limits)
        if single and not any(isinstance(x, dict) and not _is_b64(x) for x in instances):
            columns = {names[0]: instances}
        else:
            columns = {name: [] for name in names}
            for i, instance in enumerate(instances):
                if not isinstance(instance, dict) or _is_b64(instance):
                    raise RequestError(
                        f"instances[{i}]: expected an object with the inputs "
                        f"{', '.join(names)}, got {_json_type(instance)}"
                    )
                _check_keys(instance, names, f"instances[{i}]")
                for name in names:
                    columns[name].append(instance[name])
        where = "instances"
    else:
        given = body["inputs"]
        if single and not (isinstance(given, dict) and not _is_b64(given)):
            columns = {names[0]: given}
        else:
            if not isinstance(given, dict):
                raise RequestError(
                    f"'inputs' must be an object with the inputs {', '.join(names)}, "
                    f"got {_json_type(given)}"
                )
            _check_keys(given, names, "inputs")
            columns = dict(given)
        where = "inputs"
    arrays = {}
    for name in names:
        label = where if where == "instances" and single else f"{where}[{name!r}]"
        arrays[name] = to_array(columns[name], inputs[name], label, limits)
    sizes = {name: (a.shape[0] if a.ndim else None) for name, a in arrays.items()}
    if any(size is None for size in sizes.values()):
        raise RequestError("every input needs a batch dimension (a list of examples)")
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name}: {size}" for name, size in sizes.items())
        raise RequestError(f"the inputs have different numbers of examples ({listed})")
    count = next(iter(sizes.values()))
    if count == 0:
        raise RequestError(f"{where}: no examples (an empty list)")
    _check_count(count, limits)
    return arrays, where == "instances"


def _check_count(count: int, limits: Limits) -> None:
    if count > limits.max_batch_size:
        raise RequestError(
            f"{count} examples in one request; the limit is {limits.max_batch_size} "
            "(--max-batch-size)"
        )


def _check_keys(given: dict, names: list[str], where: str) -> None:
    """Refuse an object of inputs that lacks one of ``names`` or has another key, naming
    every missing and every unknown input, and the ones the signature takes."""
    missing = [name for name in names if name not in given]
    unknown = sorted(set(given) - set(names))
    problems = []
    if missing:
        problems.append(f"missing {_listed('input', missing)}")
    if unknown:
        problems.append(f"unknown {_listed('input', unknown)}")
    if problems:
        raise RequestError(
            f"{where}: {'; '.join(problems)} (the signature's inputs: {', '.join(names)})"
        )


def _listed(noun: str, keys: list[str]) -> str:
    """``input 'a'`` or ``inputs 'a', 'b'``."""
    return f"{noun}{'s' if len(keys) > 1 else ''} {', '.join(repr(k) for k in keys)}"


def _jsonable(value, binary: bool):
    if isinstance(value, np.ndarray):
        return [_jsonable(v, binary) for v in value]
    if isinstance(value, bytes):
        if binary:
            return {"b64": base64.b64encode(value).decode("ascii")}
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):  # NaN and Infinity stay, written as TF Serving writes them
        return value.item()
    return value


def format_outputs(outputs: dict[str, np.ndarray], row_format: bool) -> dict:
    """The response body: ``{"predictions": [...]}`` (row) or ``{"outputs": ...}`` (columnar)."""
    names = sorted(outputs)
    if row_format:
        count = len(next(iter(outputs.values())))
        rows = []
        for i in range(count):
            row = {name: _jsonable(outputs[name][i], name.endswith("_bytes")) for name in names}
            rows.append(row[names[0]] if len(names) == 1 else row)
        return {"predictions": rows}
    columns = {name: _jsonable(outputs[name], name.endswith("_bytes")) for name in names}
    return {"outputs": columns[names[0]] if len(names) == 1 else columns}
