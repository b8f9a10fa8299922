"""The ASGI app: :func:`create_app` serves every export under a root with TensorFlow
Serving's REST routes (listed in :mod:`seqtasks.serving.app`), loading the models at
startup and polling the root for new versions every ``poll_seconds``.

The request and response models and the error answers are :mod:`seqtasks.serving.api`;
the ``/docs`` and ``/redoc`` pages, served without a CDN, :mod:`seqtasks.serving.docs`;
binding and running the server is :mod:`seqtasks.serving.app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from starlette.convertors import Convertor, register_url_convertor

from seqtasks.serving.api import (
    ERRORS,
    LABEL,
    NAME,
    PREDICT_SCHEMA,
    VERSION,
    ErrorBody,
    MetadataResponse,
    PredictResponse,
    StatusResponse,
    add_error_handlers,
    json_response,
    model_error,
    parse_version,
)
from seqtasks.serving.codec import (
    DEFAULT_SIGNATURE,
    Limits,
    RequestError,
    format_outputs,
    parse_predict,
)
from seqtasks.serving.docs import add_docs
from seqtasks.serving.models import Registry, valid_name

log = logging.getLogger("seqtasks.serving.app")  # the server's log name, as before the split


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


def create_app(root: str, settings: ServerSettings | None = None) -> FastAPI:
    """The ASGI app serving every export under ``root`` (``<name>/<version>/`` folders).

    The models load at startup (the app's lifespan), then every
    ``settings.poll_seconds`` (0: never) in the background; ``settings`` defaults to
    ``ServerSettings()``. Nothing is raised to the client: every error is answered as
    ``{"error": ...}`` (see :func:`seqtasks.serving.api.add_error_handlers`).
    """
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
        docs_url=None,  # add_docs: the same pages, with their assets served here, not a CDN
        redoc_url=None,
    )
    add_docs(app)
    app.state.registry = registry
    app.state.settings = settings
    app.state.refresh = refresh

    add_error_handlers(app)

    def lookup(name: str, version: str | None, label: str | None):
        if not valid_name(name):
            raise RequestError(
                f"model name {name!r} is not valid (letters, digits, '_', '-', '.'; "
                "not starting with '.')"
            )
        return registry.resolve(name, parse_version(version), label)

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
        return json_response({"model_version_status": entries})

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
        return json_response(
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
            raise model_error(e) from None
        return json_response(format_outputs(outputs, row_format))

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
