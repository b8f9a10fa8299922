"""The HTTP server: TensorFlow Serving's REST API on FastAPI and uvicorn.

Routes (TF Serving's; ``[/versions/V|/labels/L]`` optional, newest version if omitted)::

    GET  /v1/models/NAME[/versions/V|/labels/L]             model version status
    GET  /v1/models/NAME[/versions/V|/labels/L]/metadata    signatures (signature_def)
    POST /v1/models/NAME[/versions/V|/labels/L]:predict     {"instances"|"inputs": ...}
    GET  /openapi.json, /docs                               the API description

Errors are ``{"error": "<message>"}`` with 400 (bad request), 404 (unknown model,
version or label), 413 (body over ``max_body_bytes``) or 500 (a failure inside the
model that is not the request's fault); the server stays up after any of them. Over
``max_concurrent_requests`` open connections, uvicorn answers 503 (plain text).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import socket
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException

from seqtasks.errors import UserError
from seqtasks.serving.batching import BatchingError
from seqtasks.serving.codec import (
    DEFAULT_SIGNATURE,
    Limits,
    RequestError,
    format_outputs,
    parse_predict,
)
from seqtasks.serving.models import NAME_PATTERN, VERSION_PATTERN, Registry, valid_name

log = logging.getLogger(__name__)


class _Segment(Convertor):
    """A path segment without ':' so that ``NAME:predict`` never routes to ``{name}``."""

    regex = "[^/:]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("segment", _Segment())


@dataclass
class ServerSettings:
    """What ``cli.py serve`` configures (defaults are its defaults)."""

    max_body_bytes: int = 10 * 1024 * 1024
    max_concurrent_requests: int = 256
    max_batch_size: int = 64
    max_text_length: int = 10_000
    batch_timeout_ms: float = 0.0
    poll_seconds: float = 10.0
    num_versions: int = 1
    labels: dict = field(default_factory=dict)


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


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _json(value, status: int = 200) -> Response:
    # TF Serving writes NaN and Infinity as bare tokens, as Python's json module reads them
    body = json.dumps(value, ensure_ascii=False, allow_nan=True, separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json")


def _version(version: str | None) -> int | None:
    if version is None:
        return None
    if not VERSION_PATTERN.fullmatch(version):
        raise RequestError(f"version {version!r} is not valid (expected a non-negative integer)")
    return int(version)


def create_app(root: str, settings: ServerSettings | None = None) -> FastAPI:
    """The ASGI app serving every export under ``root`` (models load at startup)."""
    settings = settings or ServerSettings()
    registry = Registry(root, settings.num_versions, settings.labels)
    limits = Limits(settings.max_batch_size, settings.max_text_length)

    async def refresh() -> None:
        models, unloaded = await asyncio.to_thread(registry.scan)
        registry.apply(models, unloaded)

    async def poll() -> None:
        while True:
            await asyncio.sleep(settings.poll_seconds)
            try:
                await refresh()
            except Exception:  # keep polling; the models already loaded keep serving
                log.exception("scanning %s failed", root)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await refresh()
        if not registry.models:
            log.warning("no models under %s yet (expected <name>/<version>/ folders)", root)
        task = asyncio.create_task(poll()) if settings.poll_seconds > 0 else None
        yield
        if task is not None:
            task.cancel()

    app = FastAPI(
        title="seqtasks serving",
        summary="TensorFlow Serving's REST API for seqtasks exports.",
        version=__import__("seqtasks").__version__,
        lifespan=lifespan,
    )
    app.state.registry = registry
    app.state.settings = settings
    app.state.refresh = refresh

    @app.exception_handler(RequestError)
    async def request_error(request, e: RequestError):
        return _error(str(e), e.status)

    @app.exception_handler(LookupError)
    async def not_found(request, e: LookupError):
        return _error(e.args[0] if e.args else "not found", 404)

    @app.exception_handler(HTTPException)
    async def http_error(request, e: HTTPException):
        message = e.detail if isinstance(e.detail, str) else json.dumps(e.detail)
        if e.status_code == 404:
            message = f"no route {request.method} {request.url.path} (see /openapi.json)"
        response = _error(message, e.status_code)
        response.headers.update(e.headers or {})  # e.g. Allow on 405
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, e: RequestValidationError):
        error = e.errors()[0]
        loc = error.get("loc", ())
        if len(loc) == 2 and loc[0] == "path" and loc[1] in PATH_ERRORS:
            return _error(PATH_ERRORS[loc[1]].format(error.get("input")), 400)
        where = ".".join(str(part) for part in loc)
        return _error(f"invalid request: {where}: {error.get('msg', '')}", 400)

    @app.exception_handler(Exception)
    async def internal_error(request, e: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(f"internal error: {type(e).__name__}: {e}", 500)

    def lookup(name: str, version: str | None, label: str | None):
        if not valid_name(name):
            raise RequestError(
                f"model name {name!r} is not valid (letters, digits, '_', '-', '.'; "
                "not starting with '.')"
            )
        return registry.resolve(name, _version(version), label)

    def status(name: str, version: str | None, label: str | None):
        if not valid_name(name):
            lookup(name, None, None)
        model = registry.models.get(name)
        if version is not None or label is not None:
            loaded = lookup(name, version, label)
            versions = {loaded.version: None}
        elif model is None:
            raise LookupError(f"Could not find any versions of model {name}")
        else:
            versions = {v: None for v in model.loaded} | {
                v: f.message for v, f in model.failed.items()
            }
        entries = []
        for v in sorted(versions, reverse=True):
            message = versions[v]
            entries.append(
                {
                    "version": str(v),
                    "state": "END" if message else "AVAILABLE",
                    "status": {"error_code": "UNKNOWN" if message else "OK"}
                    | ({"error_message": message} if message else {"error_message": ""}),
                }
            )
        return _json({"model_version_status": entries})

    def metadata(name: str, version: str | None, label: str | None):
        loaded = lookup(name, version, label)
        signature_def = {
            key: {
                "inputs": {n: t.proto_json(n) for n, t in sig.inputs.items()},
                "outputs": {n: t.proto_json(n) for n, t in sig.outputs.items()},
                "method_name": sig.method_name,
            }
            for key, sig in loaded.signatures.items()
        }
        return _json(
            {
                "model_spec": {"name": name, "signature_name": "", "version": str(loaded.version)},
                "metadata": {"signature_def": {"signature_def": signature_def}},
            }
        )

    async def read_body(request: Request) -> bytes:
        limit = settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        too_big = f"request body over {limit} bytes (--max-body-bytes)"
        if declared.isdigit() and int(declared) > limit:
            raise RequestError(too_big, 413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError(too_big, 413)
            chunks.append(chunk)
        return b"".join(chunks)

    async def predict(request: Request, name: str, version: str | None, label: str | None):
        raw = await read_body(request)
        loaded = lookup(name, version, label)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as e:
            raise RequestError(f"the request body is not valid JSON: {e}") from None
        key = body.get("signature_name") if isinstance(body, dict) else None
        key = DEFAULT_SIGNATURE if key in (None, "") else key
        if not isinstance(key, str) or key not in loaded.signatures:
            raise RequestError(
                f"signature_name {key!r} not found (the model has: {', '.join(loaded.signatures)})"
            )
        signature = loaded.signatures[key]
        arrays, row_format = parse_predict(body, signature.inputs, limits)
        batcher = loaded.batcher(key, settings.max_batch_size, settings.batch_timeout_ms / 1000)
        try:
            outputs = await batcher.submit(arrays)
        except Exception as e:
            raise _model_error(e) from None
        return _json(format_outputs(outputs, row_format))

    # --- routes ----------------------------------------------------------------------
    # Separate routes per URL form, so that the OpenAPI description lists each one.
    model_path = "/v1/models/{name:segment}"
    status_kw = {"responses": ERRORS, "response_model": StatusResponse, "tags": ["models"]}
    meta_kw = {"responses": ERRORS, "response_model": MetadataResponse, "tags": ["models"]}
    predict_kw = {
        "responses": {
            **ERRORS,
            413: {"model": ErrorBody, "description": "Body over --max-body-bytes."},
            500: {"model": ErrorBody, "description": "The model failed (not the input's fault)."},
        },
        "response_model": PredictResponse,
        "tags": ["predict"],
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PREDICT_SCHEMA}},
            }
        },
    }

    @app.get(model_path, summary="Status of a model's versions", **status_kw)
    async def get_status(name: str = NAME):
        return status(name, None, None)

    @app.get(
        model_path + "/versions/{version:segment}", summary="Status of one version", **status_kw
    )
    async def get_version_status(name: str = NAME, version: str = VERSION):
        return status(name, version, None)

    @app.get(
        model_path + "/labels/{label:segment}", summary="Status of a labelled version", **status_kw
    )
    async def get_label_status(name: str = NAME, label: str = LABEL):
        return status(name, None, label)

    @app.get(model_path + "/metadata", summary="Signatures of the newest version", **meta_kw)
    async def get_metadata(name: str = NAME):
        return metadata(name, None, None)

    @app.get(model_path + "/versions/{version:segment}/metadata", summary="Signatures", **meta_kw)
    async def get_version_metadata(name: str = NAME, version: str = VERSION):
        return metadata(name, version, None)

    @app.get(model_path + "/labels/{label:segment}/metadata", summary="Signatures", **meta_kw)
    async def get_label_metadata(name: str = NAME, label: str = LABEL):
        return metadata(name, None, label)

    @app.post(model_path + ":predict", summary="Predict with the newest version", **predict_kw)
    async def post_predict(request: Request, name: str = NAME):
        return await predict(request, name, None, None)

    @app.post(model_path + "/versions/{version:segment}:predict", summary="Predict", **predict_kw)
    async def post_version_predict(request: Request, name: str = NAME, version: str = VERSION):
        return await predict(request, name, version, None)

    @app.post(model_path + "/labels/{label:segment}:predict", summary="Predict", **predict_kw)
    async def post_label_predict(request: Request, name: str = NAME, label: str = LABEL):
        return await predict(request, name, None, label)

    return app


def _model_error(e: Exception) -> Exception:
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


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for :func:`serve`, so that a busy port is reported
    before the models load (TCP; IPv6 when ``host`` is an IPv6 address; port 0: any free one).

    Raises:
        UserError: the address cannot be bound (in use, not this machine's, no permission).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn does
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        reason = e.strerror or str(e)
        reason = reason[:1].lower() + reason[1:]
        if isinstance(e, socket.gaierror):
            raise UserError(f"--host {host}: cannot resolve it ({reason})") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise UserError(f"--host {host}: not an address of this machine ({reason})") from None
        raise UserError(f"--port {port}: {reason} on {host}") from None
    sock.set_inheritable(True)
    return sock


def make_server(root: str, settings: ServerSettings, log_level: str = "info"):
    """The uvicorn server of :func:`create_app`; ``settings.max_concurrent_requests`` is
    its ``limit_concurrency``. Run it with ``.run(sockets=[bind(host, port)])``."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets=sockets)
            if self.started and sockets:  # uvicorn logs no address for given sockets
                host, port = sockets[0].getsockname()[:2]
                host = f"[{host}]" if ":" in host else host
                log.info("serving on http://%s:%d (press Ctrl+C to stop)", host, port)

    app = create_app(root, settings)
    limit = settings.max_concurrent_requests
    return Server(uvicorn.Config(app, log_level=log_level, limit_concurrency=limit))


def serve(
    sock: socket.socket, root: str, settings: ServerSettings, log_level: str = "info"
) -> None:
    """Run the server on ``sock`` (from :func:`bind`) until interrupted (the models load
    before the socket listens)."""
    make_server(root, settings, log_level).run(sockets=[sock])
