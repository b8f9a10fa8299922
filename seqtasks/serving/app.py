"""The HTTP server: TensorFlow Serving's REST API on FastAPI and uvicorn.

Routes (TF Serving's; ``[/versions/V|/labels/L]`` optional, newest version if omitted)::

    GET  /v1/models/NAME[/versions/V|/labels/L]             model version status
    GET  /v1/models/NAME[/versions/V|/labels/L]/metadata    signatures (signature_def)
    POST /v1/models/NAME[/versions/V|/labels/L]:predict     {"instances"|"inputs": ...}
    GET  /openapi.json, /docs, /redoc                       the API description (offline)

Errors are ``{"error": "<message>"}`` with 400 (bad request), 404 (unknown model,
version or label), 413 (body over ``max_body_bytes``) or 500 (a failure inside the
model that is not the request's fault); the server stays up after any of them. Over
``max_concurrent_requests`` open connections, uvicorn answers 503 (plain text).

The app (:func:`create_app`, :class:`ServerSettings`) is built in
:mod:`seqtasks.serving.routes`, its request/response models and error answers are
:mod:`seqtasks.serving.api`; this module binds the socket and runs uvicorn
(:func:`bind`, :func:`make_server`, :func:`serve`).
"""

from __future__ import annotations

import errno
import logging
import socket

from seqtasks.errors import UserError
from seqtasks.serving.api import model_error as _model_error  # noqa: F401 (the old name)
from seqtasks.serving.routes import ServerSettings, create_app

# ServerSettings and create_app stay importable from here (cli.py serve imports this module).
__all__ = ["ServerSettings", "bind", "create_app", "make_server", "serve"]

log = logging.getLogger(__name__)


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
