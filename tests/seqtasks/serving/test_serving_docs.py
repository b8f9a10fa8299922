"""`cli.py serve` for a newcomer: /docs and /redoc work offline (their assets come from
this server, no CDN), a predict body's unknown input names are named in the 400 answer
with the inputs the signature takes, and every `serve` flag has a help text.

No model is trained here: the pages are fetched from a server on an empty folder (real
loopback socket, `requests`), the input checks call the codec directly.
"""

from __future__ import annotations

import logging
import re

import pytest
import requests

from conftest import running_server
from seqtasks.serving.codec import Limits, RequestError, TensorInfo, parse_predict

TEXT = {"text": TensorInfo("string", (None,))}
PAIR = {"source": TensorInfo("string", (None,)), "target": TensorInfo("string", (None,))}


@pytest.fixture
def served(tmp_path):
    with running_server(tmp_path) as (base, _):
        yield base


def _links(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


# --- /docs and /redoc offline ------------------------------------------------------------


def test_docs_page_and_its_swagger_ui_assets_are_served_by_the_server(served):
    page = requests.get(f"{served}/docs", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "http://" not in html and "https://" not in html  # no CDN
    assert "SwaggerUIBundle(" in html and "url: '/openapi.json'" in html
    links = _links(html)
    assert sorted(links) == [
        "/docs/static/favicon.png",
        "/docs/static/swagger-ui-bundle.js",
        "/docs/static/swagger-ui.css",
    ]
    js = requests.get(served + "/docs/static/swagger-ui-bundle.js", timeout=30)
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert len(js.content) > 100_000 and b"SwaggerUIBundle" in js.content
    css = requests.get(served + "/docs/static/swagger-ui.css", timeout=30)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert len(css.content) > 10_000 and b".swagger-ui" in css.content
    icon = requests.get(served + "/docs/static/favicon.png", timeout=30)
    assert icon.status_code == 200 and icon.content.startswith(b"\x89PNG")
    # the page's OpenAPI description and OAuth2 redirect page are there too
    assert requests.get(served + "/openapi.json", timeout=30).json()["info"]["title"] == (
        "seqtasks serving"
    )
    redirect = requests.get(served + "/docs/oauth2-redirect", timeout=30)
    assert redirect.status_code == 200 and "oauth2" in redirect.text.lower()
    # an asset that is not there is answered as every other error
    missing = requests.get(served + "/docs/static/nope.js", timeout=30)
    assert missing.status_code == 404 and list(missing.json()) == ["error"]


def test_redoc_page_and_its_script_are_served_by_the_server(served):
    page = requests.get(f"{served}/redoc", timeout=30)
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # no CDN, no web fonts
    assert sorted(_links(page.text)) == ["/docs/static/favicon.png", "/docs/static/redoc.standalone.js"]  # fmt: skip
    script = requests.get(served + "/docs/static/redoc.standalone.js", timeout=30)
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert len(script.content) > 100_000


def test_docs_fall_back_to_the_cdn_with_a_warning_without_the_assets_package(
    tmp_path, monkeypatch, caplog
):
    from starlette.routing import Mount

    from seqtasks.serving import docs
    from seqtasks.serving.routes import create_app

    assert docs.static_dir() is not None  # installed from requirements.txt
    monkeypatch.setattr(docs, "static_dir", lambda: None)
    with caplog.at_level(logging.WARNING, logger="seqtasks.serving.app"):
        app = create_app(str(tmp_path))
    assert "fastapi-offline package is missing" in caplog.text
    assert not any(isinstance(r, Mount) for r in app.routes)
    paths = {getattr(r, "path", None) for r in app.routes}
    assert {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"} <= paths


# --- unknown input names ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body, inputs, message",
    [
        # the case: one input, a wrong name, in both formats
        ({"instances": [{"txt": "a"}]}, TEXT, "instances[0]: missing input 'text'; unknown input 'txt' (the signature's inputs: text)"),
        ({"inputs": {"txt": ["a"]}}, TEXT, "inputs: missing input 'text'; unknown input 'txt' (the signature's inputs: text)"),
        # an extra name beside the right one
        ({"instances": [{"text": "a", "x": "b"}]}, TEXT, "instances[0]: unknown input 'x' (the signature's inputs: text)"),
        ({"inputs": {"text": ["a"], "x": 1}}, TEXT, "inputs: unknown input 'x' (the signature's inputs: text)"),
        # two inputs: every missing and unknown one is named
        ({"instances": [{"src": "a", "tgt": "b"}]}, PAIR, "instances[0]: missing inputs 'source', 'target'; unknown inputs 'src', 'tgt' (the signature's inputs: source, target)"),
        ({"inputs": {"source": ["a"], "trg": ["b"]}}, PAIR, "inputs: missing input 'target'; unknown input 'trg' (the signature's inputs: source, target)"),
        ({"instances": [{"source": "a", "target": "b"}, {"source": "c"}]}, PAIR, "instances[1]: missing input 'target' (the signature's inputs: source, target)"),
        # unknown keys of the body itself
        ({"instances": ["a"], "extra": 1}, TEXT, "unknown key 'extra' in the request body (it takes 'instances' or 'inputs', and optionally 'signature_name')"),
        ({"inputs": ["a"], "b": 1, "a": 2}, TEXT, "unknown keys 'a', 'b' in the request body"),
    ],
)  # fmt: skip
def test_unknown_and_missing_inputs_are_named_with_the_expected_ones(body, inputs, message):
    with pytest.raises(RequestError) as caught:
        parse_predict(body, inputs, Limits())
    assert caught.value.status == 400
    assert str(caught.value).startswith(message), str(caught.value)


def test_the_right_input_names_still_parse_in_both_formats():
    arrays, row = parse_predict({"instances": [{"source": "a", "target": "b"}]}, PAIR, Limits())
    assert row and {k: v.tolist() for k, v in arrays.items()} == {
        "source": [b"a"],
        "target": [b"b"],
    }
    arrays, row = parse_predict({"inputs": {"text": ["x", "y"]}}, TEXT, Limits())
    assert not row and arrays["text"].tolist() == [b"x", b"y"]


# --- serve's flags ---------------------------------------------------------------------


def test_every_serve_flag_has_a_help_text():
    import click
    from click.testing import CliRunner

    from cli import cli
    from seqtasks.commands.serve import serve

    options = [p for p in serve.params if isinstance(p, click.Option)]
    assert len(options) == 10  # --host ... --label (click adds --help itself)
    assert [o.name for o in options if not (o.help or "").strip()] == []
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # click wraps the help column
    assert "--port INTEGER RANGE Port to listen on (0: any free one" in text
    assert "/docs (Swagger UI) or /redoc; both pages work offline" in text
