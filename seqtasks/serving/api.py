"""The serving API's contract: request and response models, path parameters, and how
errors map to HTTP answers, for the routes of :func:`seqtasks.serving.routes.create_app`.

Every error is ``{"error": "<message>"}`` (:func:`error_response`) with 400 (bad request:
a :class:`~seqtasks.serving.codec.RequestError`, an invalid path parameter or body),
404 (a ``LookupError``: unknown model, version or label; or no such route), 413 (body
over ``max_body_bytes``), 405 (wrong method, with ``Allow``) or 500 (a failure inside
the model that is not the request's fault, see :func:`model_error`, or any other
exception).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Path
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from seqtasks.serving.batching import BatchingError
from seqtasks.serving.codec import RequestError
from seqtasks.serving.models import NAME_PATTERN, VERSION_PATTERN

log = logging.getLogger("seqtasks.serving.app")  # the server's log name, as before the split


class ErrorBody(BaseModel):
    error: str = Field(description="What was wrong with the request, or what failed.")


class PredictBody(BaseModel):
    """TF Serving's predict request: exactly one of ``instances`` or ``inputs``."""

    signature_name: str | None = Field(
        None, description="Signature to call (default serving_default)."
    )
    instances: list[Any] | None = Field(
        None,
        description="Row format: one element per example; a value when the signature has "
        'one input, else an object of input name to value. Bytes as {"b64": "..."}.',
        examples=[["great film", "dull"]],
    )
    inputs: Any = Field(
        None,
        description="Columnar format: a value (one input) or an object of input name to "
        "values, each with the examples on its first axis.",
        examples=[{"text": ["A dog runs."]}],
    )


class PredictResponse(BaseModel):
    predictions: list[Any] | None = Field(None, description="Answer to the row format.")
    outputs: Any = Field(None, description="Answer to the columnar format.")


class VersionStatus(BaseModel):
    version: str
    state: str = Field(description="AVAILABLE (serving) or END (failed to load).")
    status: dict[str, str] = Field(description="error_code (OK or UNKNOWN) and error_message.")


class StatusResponse(BaseModel):
    model_version_status: list[VersionStatus]


class MetadataResponse(BaseModel):
    model_spec: dict[str, Any]
    metadata: dict[str, Any]


NAME = Path(
    pattern=f"^{NAME_PATTERN.pattern}$",
    description="Model name: a folder under the served root.",
    examples=["sentiment"],
)
VERSION = Path(
    pattern=f"^{VERSION_PATTERN.pattern}$",
    description="Model version: a non-negative integer folder under the model's folder.",
    examples=["1"],
)
LABEL = Path(
    pattern=f"^{NAME_PATTERN.pattern}$",
    description="A version label given with --label.",
    examples=["stable"],
)
PATH_ERRORS = {
    "name": "model name {!r} is not valid (letters, digits, '_', '-', '.'; not starting with '.')",
    "version": "version {!r} is not valid (expected a non-negative integer)",
    "label": "label {!r} is not valid (letters, digits, '_', '-', '.'; not starting with '.')",
}
# The predict body as a JSON schema: exactly one of instances or inputs.
PREDICT_SCHEMA = {
    **PredictBody.model_json_schema(),
    "additionalProperties": False,
    "oneOf": [
        {"required": ["instances"], "not": {"required": ["inputs"]}},
        {"required": ["inputs"], "not": {"required": ["instances"]}},
    ],
}

ERRORS = {
    400: {"model": ErrorBody, "description": "Malformed request or a limit exceeded."},
    404: {"model": ErrorBody, "description": "No such model, version or label."},
}


def error_response(message: str, status: int) -> JSONResponse:
    """``{"error": message}`` with HTTP status ``status``."""
    return JSONResponse({"error": message}, status_code=status)


def json_response(value, status: int = 200) -> Response:
    """``value`` as compact JSON (UTF-8, NaN and Infinity as bare tokens)."""
    # TF Serving writes NaN and Infinity as bare tokens, as Python's json module reads them
    body = json.dumps(value, ensure_ascii=False, allow_nan=True, separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json")


def parse_version(version: str | None) -> int | None:
    """A version path segment as an int (``None`` stays ``None``).

    Raises:
        RequestError: not a non-negative integer (400).
    """
    if version is None:
        return None
    if not VERSION_PATTERN.fullmatch(version):
        raise RequestError(f"version {version!r} is not valid (expected a non-negative integer)")
    return int(version)


def add_error_handlers(app: FastAPI) -> None:
    """Answer every exception raised while handling a request with :func:`error_response`."""

    @app.exception_handler(RequestError)
    async def request_error(request, e: RequestError):
        return error_response(str(e), e.status)

    @app.exception_handler(LookupError)
    async def not_found(request, e: LookupError):
        return error_response(e.args[0] if e.args else "not found", 404)

    @app.exception_handler(HTTPException)
    async def http_error(request, e: HTTPException):
        message = e.detail if isinstance(e.detail, str) else json.dumps(e.detail)
        if e.status_code == 404:
            message = f"no route {request.method} {request.url.path} (see /openapi.json)"
        response = error_response(message, e.status_code)
        response.headers.update(e.headers or {})  # e.g. Allow on 405
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, e: RequestValidationError):
        error = e.errors()[0]
        loc = error.get("loc", ())
        if len(loc) == 2 and loc[0] == "path" and loc[1] in PATH_ERRORS:
            return error_response(PATH_ERRORS[loc[1]].format(error.get("input")), 400)
        where = ".".join(str(part) for part in loc)
        return error_response(f"invalid request: {where}: {error.get('msg', '')}", 400)

    @app.exception_handler(Exception)
    async def internal_error(request, e: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(f"internal error: {type(e).__name__}: {e}", 500)


def model_error(e: Exception) -> Exception:
    """A TensorFlow error as a RequestError: 400 for invalid arguments, else 500."""
    import tensorflow as tf

    if isinstance(e, BatchingError):
        return RequestError(f"internal error: {e}", 500)
    message = (str(e).strip().splitlines() or [type(e).__name__])[0]
    if isinstance(e, (tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError)):
        return RequestError(f"the model rejected the input: {message}", 400)
    if isinstance(e, tf.errors.OpError):
        return RequestError(f"the model failed: {type(e).__name__}: {message}", 500)
    return e
