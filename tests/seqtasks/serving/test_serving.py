"""`cli.py serve`: TF Serving's REST API over real tiny exports, on a real loopback socket.

One server per module (uvicorn in a thread on a free 127.0.0.1 port) serves a tiny
sentiment, translation and captioning export, a model with a broken newest version and
a broken model; requests go through `requests` as any client's would.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import shutil
import socket
import time

import numpy as np
import pytest
import requests

from conftest import (
    TINY_CAPTIONING,
    assert_one_line_error,
    caption_csv,
    flickr_images,
    running_server,
    write_file,
)

LIMITS = {"max_body_bytes": 20_000, "max_batch_size": 8, "max_text_length": 300}


def _train(recipe_name: str, root, **settings) -> str:
    from seqtasks.training import train
    from tasks import get_recipe

    recipe = get_recipe(recipe_name)
    config = recipe.make_config(
        export_dir=str(root / "export"), run_dir=str(root / "run"), **settings
    )
    return train(recipe, config, verbose=0).export_path


@pytest.fixture(scope="module")
def exports(tmp_path_factory, trained, translation):
    """The session's tiny sentiment and translation exports, and a tiny captioning one
    (a small CNN encoder on 32-px images of 6 real Flickr8k photos)."""
    root = tmp_path_factory.mktemp("serving_exports")
    names, captions = flickr_images(root / "images", 6)
    csv = caption_csv(root / "images" / "captions.csv", names, captions, per_image=2)
    captioning = _train(
        "captioning",
        root / "captioning",
        data=csv,
        **{
            **TINY_CAPTIONING,
            "encoder": "cnn",
            "image_size": 32,
            "beam_size": 1,
            "vocabulary_size": 100,
            "hidden_dim": 8,
            "embedding_dim": 8,
        },
    )
    import tensorflow as tf

    # a real photo made small, so that requests with it stay under the body limit
    pixels = tf.io.decode_jpeg(open(root / "images" / names[0], "rb").read())
    small = tf.cast(tf.image.resize(pixels, (48, 64)), tf.uint8)
    image = tf.io.encode_jpeg(small).numpy()
    return {
        "sentiment": trained.export_path,
        "translation": translation.export_path,
        "captioning": captioning,
        "image": image,
    }


@pytest.fixture(scope="module")
def server(exports, tmp_path_factory):
    """The server on a free loopback port; yields (base URL, app, models root)."""
    from seqtasks.serving.app import ServerSettings

    root = tmp_path_factory.mktemp("served")
    for name in ("sentiment", "translation", "captioning"):
        shutil.copytree(exports[name], root / name / "1")
    shutil.copytree(exports["sentiment"], root / "sentiment" / "2")
    # "fallback": version 2 is broken (an unknown requirement), version 1 keeps serving
    shutil.copytree(exports["sentiment"], root / "fallback" / "1")
    shutil.copytree(exports["sentiment"], root / "fallback" / "2")
    meta = root / "fallback" / "2" / "assets.extra" / "metadata.json"
    write_file(meta, json.dumps({**json.loads(meta.read_text()), "requires": ["os"]}))
    os.makedirs(root / "broken" / "1")
    write_file(root / "broken" / "1" / "saved_model.pb", b"not a protobuf")
    settings = ServerSettings(
        **LIMITS,
        batch_timeout_ms=20,
        poll_seconds=0.2,
        num_versions=2,
        labels={("sentiment", "stable"): 1},
    )
    with running_server(root, settings) as (base, uv):
        yield base, uv.config.app, root


def post(url, body, **kwargs):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(url, data=data, timeout=60, **kwargs)


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    return body["error"]


# --- status and metadata ---------------------------------------------------------------


def test_status_lists_available_versions_and_reports_broken_ones(server):
    base, _, _ = server
    assert requests.get(f"{base}/v1/models/translation").json() == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    fallback = requests.get(f"{base}/v1/models/fallback").json()["model_version_status"]
    assert [(v["version"], v["state"], v["status"]["error_code"]) for v in fallback] == [
        ("2", "END", "UNKNOWN"),
        ("1", "AVAILABLE", "OK"),
    ]
    assert fallback[0]["status"]["error_message"].endswith(
        "metadata requires 'os', which the server does not import "
        "(known: tensorflow, tensorflow_text)"
    )
    broken = requests.get(f"{base}/v1/models/broken").json()["model_version_status"]
    assert broken[0]["state"] == "END"
    assert "cannot load the SavedModel" in broken[0]["status"]["error_message"]
    # the good version of "fallback" serves; the broken model answers 404 to predict
    ok = post(f"{base}/v1/models/fallback:predict", {"instances": ["fine"]})
    assert ok.status_code == 200 and len(ok.json()["predictions"]) == 1
    message = error_of(post(f"{base}/v1/models/broken:predict", {"instances": ["x"]}), 404)
    assert message == "Servable not found for request: Latest(broken)"
    status = requests.get(f"{base}/v1/models/sentiment/versions/1").json()
    assert [v["version"] for v in status["model_version_status"]] == ["1"]


def test_metadata_gives_signature_defs(server):
    base, _, _ = server
    meta = requests.get(f"{base}/v1/models/translation/metadata").json()
    assert meta["model_spec"] == {"name": "translation", "signature_name": "", "version": "1"}
    defs = meta["metadata"]["signature_def"]["signature_def"]
    assert sorted(defs) == ["score", "serving_default"]
    text = {"dtype": "DT_STRING", "name": "serving_default_text:0", "tensor_shape": {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}}  # fmt: skip
    assert defs["serving_default"]["inputs"] == {"text": text}
    assert sorted(defs["serving_default"]["outputs"]) == ["score", "translation"]
    assert sorted(defs["score"]["inputs"]) == ["target", "text"]
    assert defs["score"]["inputs"]["target"]["name"] == "score_target:0"
    assert defs["serving_default"]["method_name"] == "tensorflow/serving/predict"
    probs = requests.get(f"{base}/v1/models/sentiment/versions/1/metadata").json()
    outputs = probs["metadata"]["signature_def"]["signature_def"]["serving_default"]["outputs"]
    assert outputs["probabilities"]["dtype"] == "DT_FLOAT"
    assert outputs["probabilities"]["tensor_shape"]["dim"][1]["size"] == "2"
    image = requests.get(f"{base}/v1/models/captioning/metadata").json()
    inputs = image["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]
    assert list(inputs) == ["image_bytes"]


# --- predict ---------------------------------------------------------------------------


def test_sentiment_row_and_columnar_formats_match_the_cli_predictions(server, exports):
    from seqtasks.export import read_metadata
    from tasks import get_recipe

    base, _, _ = server
    texts = ["a great , moving film", "dull and lifeless"]
    expected = get_recipe("sentiment").predict(
        exports["sentiment"], read_metadata(exports["sentiment"]), texts
    )
    rows = post(f"{base}/v1/models/sentiment:predict", {"instances": texts}).json()["predictions"]
    assert [row["label"] for row in rows] == [e["label"] for e in expected]
    for row, e in zip(rows, expected):
        assert sum(row["probabilities"]) == pytest.approx(1.0, abs=1e-5)
        assert row["probabilities"] == pytest.approx(list(e["probabilities"].values()), abs=1e-5)
    named = post(f"{base}/v1/models/sentiment:predict", {"instances": [{"text": t} for t in texts]})
    assert named.json()["predictions"] == rows
    columns = post(f"{base}/v1/models/sentiment:predict", {"inputs": {"text": texts}}).json()
    assert columns == {
        "outputs": {
            "label": [row["label"] for row in rows],
            "probabilities": [row["probabilities"] for row in rows],
        }
    }
    bare = post(f"{base}/v1/models/sentiment:predict", {"inputs": texts}).json()
    assert bare == columns
    b64 = [{"b64": base64.b64encode(t.encode()).decode()} for t in texts]
    assert (
        post(f"{base}/v1/models/sentiment:predict", {"instances": b64}).json()["predictions"]
        == rows
    )


def test_translation_both_formats_and_the_score_signature(server, exports):
    base, _, _ = server
    url = f"{base}/v1/models/translation/versions/1:predict"
    rows = post(url, {"instances": ["A dog runs.", "Two men."]}).json()["predictions"]
    assert [sorted(row) for row in rows] == [["score", "translation"]] * 2
    assert all(isinstance(row["translation"], str) for row in rows)
    columns = post(url, {"inputs": {"text": ["A dog runs."]}}).json()["outputs"]
    assert columns["translation"] == [rows[0]["translation"]]
    assert columns["score"] == pytest.approx([rows[0]["score"]], abs=1e-4)
    score = post(
        url,
        {
            "signature_name": "score",
            "instances": [{"text": "A dog runs.", "target": rows[0]["translation"]}],
        },
    ).json()["predictions"]
    assert sorted(score[0]) == ["log_likelihood", "tokens"]
    assert isinstance(score[0]["tokens"], int) and score[0]["tokens"] >= 1
    columnar = post(
        url, {"signature_name": "score", "inputs": {"text": ["a", "b"], "target": ["x", "y"]}}
    ).json()["outputs"]
    assert len(columnar["log_likelihood"]) == len(columnar["tokens"]) == 2


def test_captioning_b64_images_and_an_image_tensorflow_rejects(server, exports):
    base, app, _ = server
    url = f"{base}/v1/models/captioning:predict"
    image = {"b64": base64.b64encode(exports["image"]).decode()}
    rows = post(url, {"instances": [{"image_bytes": image}] * 2}).json()["predictions"]
    assert len(rows) == 2 and rows[0] == rows[1]
    assert post(url, {"instances": [image]}).json()["predictions"] == rows[:1]
    mixed = post(url, {"instances": [{"image_bytes": image}, image]})
    assert error_of(mixed, 400) == (
        "instances[1]: expected an object with the inputs image_bytes, got an object"
    )
    assert sorted(rows[0]) == ["caption", "score"] and isinstance(rows[0]["caption"], str)
    columns = post(url, {"inputs": {"image_bytes": [image]}}).json()["outputs"]
    assert columns["caption"] == [rows[0]["caption"]]
    # bytes that are no image fail inside TensorFlow: 400, alone, and the server stays healthy
    junk = {"b64": base64.b64encode(b"no image here").decode()}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda x: post(url, {"instances": [x]}), [junk, image, image, junk])
        )
    assert [a.status_code for a in answers] == [400, 200, 200, 400]
    assert error_of(answers[0], 400).startswith("the model rejected the input: ")
    assert post(url, {"instances": [image]}).json()["predictions"] == rows[:1]


def test_concurrent_requests_share_batches(server):
    base, app, _ = server
    loaded = app.state.registry.resolve("translation")
    before = loaded.batchers["serving_default"].batches if loaded.batchers else 0
    url = f"{base}/v1/models/translation:predict"
    texts = [f"A dog number {i} runs." for i in range(12)]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda t: post(url, {"instances": [t]}), texts))
    assert all(a.status_code == 200 for a in answers)
    alone = post(url, {"instances": texts[:8]}).json()["predictions"]
    shared = [a.json()["predictions"][0] for a in answers[:8]]
    assert [row["translation"] for row in shared] == [row["translation"] for row in alone]
    for row, single in zip(shared, alone):
        assert row["score"] == pytest.approx(single["score"], rel=1e-5)
    calls = loaded.batchers["serving_default"].batches - before - 1
    assert 1 <= calls < 12


# --- batching (fake functions, no model) -----------------------------------------------


def _batch(run, requests_, max_batch_size=8):
    """Submit ``requests_`` at once to a Batcher of ``run``; their outcomes (result or
    exception) and the batch sizes ``run`` was called with."""
    import asyncio

    from seqtasks.serving.batching import Batcher

    calls = []

    def counted(arrays):
        calls.append(len(next(iter(arrays.values()))))
        return run(arrays)

    async def main():
        with concurrent.futures.ThreadPoolExecutor(1) as executor:
            batcher = Batcher(counted, executor, max_batch_size, timeout=0.05)
            answers = asyncio.gather(
                *(batcher.submit(r) for r in requests_), return_exceptions=True
            )
            outcomes = await asyncio.wait_for(answers, 10)  # the bug hung here
            after = await asyncio.wait_for(batcher.submit({"x": np.ones(1, "f4")}), 10)
            batcher.close()
            return outcomes, after

    outcomes, after = asyncio.run(main())
    return outcomes, after, calls


def test_batcher_runs_requests_alone_when_an_output_has_no_batch_axis():
    xs = [np.full(1, i, "f4") for i in range(3)]
    outcomes, after, calls = _batch(
        lambda a: {"y": np.float32(len(a["x"])), "z": a["x"] * 2}, [{"x": x} for x in xs]
    )
    assert calls == [3, 1, 1, 1, 1]  # batched, then one by one; the worker still serves
    assert [o["y"] for o in outcomes] == [1.0, 1.0, 1.0]
    assert [o["z"].tolist() for o in outcomes] == [[0.0], [2.0], [4.0]]
    assert after["y"] == 1.0
    # an output whose first axis is not the batch's examples is not split either
    outcomes, _, calls = _batch(lambda a: {"y": a["x"][:1]}, [{"x": x} for x in xs])
    assert calls == [3, 1, 1, 1, 1] and [o["y"].tolist() for o in outcomes] == [[0], [1], [2]]


def test_batcher_fails_the_batch_on_a_bug_and_keeps_serving():
    from seqtasks.serving.api import model_error
    from seqtasks.serving.batching import BatchingError

    # a request without inputs trips the batcher's own code while it collects a batch
    outcomes, after, calls = _batch(lambda a: {"y": a["x"]}, [{"x": np.zeros(2, "f4")}, {}])
    assert [type(o) for o in outcomes] == [BatchingError, BatchingError]
    assert str(outcomes[0]) == "batching failed: RuntimeError: coroutine raised StopIteration"
    assert after["y"].tolist() == [1.0] and calls == [1]
    error = model_error(outcomes[0])
    assert (error.status, str(error)) == (500, f"internal error: {outcomes[0]}")


# --- versions --------------------------------------------------------------------------


def test_version_and_label_selection_then_hot_reload_of_a_new_version(server, exports):
    base, _, root = server

    def version_of(url):
        return requests.get(url + "/metadata").json()["model_spec"]["version"]

    assert version_of(f"{base}/v1/models/sentiment") == "2"
    assert version_of(f"{base}/v1/models/sentiment/versions/1") == "1"
    assert version_of(f"{base}/v1/models/sentiment/labels/stable") == "1"
    ok = post(f"{base}/v1/models/sentiment/labels/stable:predict", {"instances": ["good"]})
    assert ok.status_code == 200
    message = error_of(
        post(f"{base}/v1/models/sentiment/labels/beta:predict", {"inputs": ["x"]}), 404
    )
    assert message == "Unrecognized servable version label: beta"
    message = error_of(
        post(f"{base}/v1/models/sentiment/versions/7:predict", {"inputs": ["x"]}), 404
    )
    assert message == "Servable not found for request: Specific(sentiment, 7)"
    # new versions appear (written atomically, as exports are): served without restart;
    # version 2 leaves the num_versions=2 window and is unloaded, version 1 is labelled: kept
    for version in ("3", "4"):
        tmp = root / "sentiment" / f".tmp-{version}"
        shutil.copytree(exports["sentiment"], tmp)
        os.rename(tmp, root / "sentiment" / version)
    deadline = time.time() + 60
    while version_of(f"{base}/v1/models/sentiment") != "4":
        assert time.time() < deadline, "version 4 was not picked up"
        time.sleep(0.2)
    status = requests.get(f"{base}/v1/models/sentiment").json()["model_version_status"]
    assert [(v["version"], v["state"]) for v in status] == [("4", "AVAILABLE"), ("3", "AVAILABLE"), ("1", "AVAILABLE")]  # fmt: skip
    assert post(f"{base}/v1/models/sentiment:predict", {"instances": ["good"]}).status_code == 200
    assert version_of(f"{base}/v1/models/sentiment/labels/stable") == "1"
    gone = post(f"{base}/v1/models/sentiment/versions/2:predict", {"instances": ["good"]})
    assert error_of(gone, 404) == "Servable not found for request: Specific(sentiment, 2)"


def test_a_labelled_old_version_is_loaded_beside_the_newest_num_versions(tmp_path, caplog):
    import tensorflow as tf

    from seqtasks.serving.models import Registry

    for version in (1, 2):  # plain SavedModels: y = x * version
        module = tf.Module()
        module.f = tf.function(
            lambda x, v=float(version): {"y": x * v},
            input_signature=[tf.TensorSpec([None], tf.float32, name="x")],
        )
        tf.saved_model.save(module, str(tmp_path / "m" / str(version)), signatures=module.f)
    labels = {("m", "stable"): 1, ("m", "gone"): 7, ("absent", "stable"): 1}
    registry = Registry(str(tmp_path), num_versions=1, labels=labels)
    with caplog.at_level("WARNING", logger="seqtasks.serving.models"):
        registry.apply(*registry.scan())
        registry.apply(*registry.scan())  # warned once, not at every poll
    assert sorted(registry.models["m"].loaded) == [1, 2]
    x = {"x": np.array([3.0], "f4")}
    assert registry.resolve("m").run("serving_default", x)["y"].tolist() == [6.0]
    stable = registry.resolve("m", label="stable")
    assert stable.run("serving_default", x)["y"].tolist() == [3.0]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"label absent:stable=1: no folder {tmp_path / 'absent' / '1'} (its URLs answer 404)",
        f"label m:gone=7: no folder {tmp_path / 'm' / '7'} (its URLs answer 404)",
    ]
    # without the label, version 1 is outside the --num-versions 1 window: unloaded
    registry.labels = {}
    models, unloaded = registry.scan()
    assert sorted(models["m"].loaded) == [2] and [v.version for v in unloaded] == [1]


# --- bad requests and limits -------------------------------------------------------------


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"{not json", 400, "the request body is not valid JSON: Expecting property name"),
        (b"\xff\xfe", 400, "the request body is not valid JSON"),
        ([1, 2], 400, "the request body must be a JSON object, got a list"),
        ({}, 400, "the request body must have exactly one of 'instances' or 'inputs'"),
        ({"instances": ["a"], "inputs": ["a"]}, 400, "exactly one of 'instances' or 'inputs'"),
        ({"instances": []}, 400, "'instances' must be a non-empty list"),
        ({"instances": "great"}, 400, "'instances' must be a non-empty list"),
        ({"instances": [3]}, 400, "instances[0]: expected a string, got a number"),
        ({"instances": [["a"]]}, 400, "instances[0]: expected a string, got a list"),
        ({"instances": [{"txt": "a"}]}, 400, "instances[0]: missing input 'text'"),
        ({"instances": [{"txt": "a"}]}, 400, "instances[0]: missing input 'text'; unknown input 'txt'"),
        ({"inputs": {"text": ["a"], "x": 1}}, 400, "inputs: unknown input 'x'"),
        ({"inputs": {"txt": ["a"]}}, 400, "inputs: missing input 'text'; unknown input 'txt' (the signature's inputs: text)"),
        ({"instances": [{"text": "a", "txt": "b"}]}, 400, "instances[0]: unknown input 'txt' (the signature's inputs: text)"),
        ({"inputs": {"text": "a"}}, 400, "inputs['text']: expected a list (rank 1), got a string"),
        ({"instances": [{"b64": "%%%"}]}, 400, "instances[0]: 'b64' is not valid base64"),
        ({"instances": [{"b64": 5}]}, 400, 'expected a string or {"b64": "<base64 string>"}'),
        ({"instances": ["a"], "signature_name": "nope"}, 400, "signature_name 'nope' not found"),
        ({"instances": ["a"], "extra": 1}, 400, "unknown key 'extra' in the request body"),
        ({"instances": ["a"] * 9}, 400, "9 examples in one request; the limit is 8 (--max-batch-size)"),
        ({"instances": ["a" * 301]}, 400, "instances[0]: text of 301 characters; the limit is 300"),
        ({"inputs": ["a" * 30_000]}, 413, "request body over 20000 bytes (--max-body-bytes)"),
    ],
)  # fmt: skip
def test_malformed_bodies_and_limits_are_4xx_with_a_clear_message(server, body, status, message):
    base, _, _ = server
    response = post(f"{base}/v1/models/sentiment:predict", body)
    assert message in error_of(response, status)


def test_bad_names_versions_and_routes_are_4xx_and_the_server_stays_healthy(server):
    base, _, _ = server
    message = error_of(requests.get(f"{base}/v1/models/%2e%2e"), 400)
    assert message.startswith("model name '..' is not valid")
    assert error_of(requests.get(f"{base}/v1/models/nope"), 404) == (
        "Could not find any versions of model nope"
    )
    message = error_of(
        post(f"{base}/v1/models/sentiment/versions/x1:predict", {"inputs": ["a"]}), 400
    )
    assert message == "version 'x1' is not valid (expected a non-negative integer)"
    # 0 is a version, as in TF Serving (whose version folders are any int64)
    message = error_of(requests.get(f"{base}/v1/models/sentiment/versions/0"), 404)
    assert message == "Servable not found for request: Specific(sentiment, 0)"
    assert error_of(requests.get(f"{base}/v1/nothing"), 404).startswith("no route GET /v1/nothing")
    assert error_of(requests.delete(f"{base}/v1/models/sentiment"), 405) == "Method Not Allowed"
    wrong_method = requests.get(f"{base}/v1/models/sentiment:predict")
    assert error_of(wrong_method, 405) == "Method Not Allowed"
    assert wrong_method.headers["allow"] == "POST"
    chunked = requests.post(
        f"{base}/v1/models/sentiment:predict", data=iter([b'{"inputs": ["', b"a" * 25_000, b'"]}'])
    )
    assert error_of(chunked, 413) == "request body over 20000 bytes (--max-body-bytes)"
    ok = post(f"{base}/v1/models/sentiment:predict", {"instances": ["fine"]})
    assert ok.status_code == 200


def test_openapi_lists_every_route(server):
    base, _, _ = server
    spec = requests.get(f"{base}/openapi.json").json()
    assert set(spec["paths"]) == {
        "/v1/models/{name}",
        "/v1/models/{name}/versions/{version}",
        "/v1/models/{name}/labels/{label}",
        "/v1/models/{name}/metadata",
        "/v1/models/{name}/versions/{version}/metadata",
        "/v1/models/{name}/labels/{label}/metadata",
        "/v1/models/{name}:predict",
        "/v1/models/{name}/versions/{version}:predict",
        "/v1/models/{name}/labels/{label}:predict",
    }
    body = spec["paths"]["/v1/models/{name}:predict"]["post"]["requestBody"]
    assert set(body["content"]["application/json"]["schema"]["properties"]) == {
        "signature_name",
        "instances",
        "inputs",
    }


def test_serve_refuses_a_missing_root(tmp_path):
    from click.testing import CliRunner

    from cli import cli

    result = CliRunner().invoke(cli, ["serve", str(tmp_path / "none")])
    assert_one_line_error(result, "no such folder")
    assert result.output == (
        f"error: {tmp_path / 'none'}: no such folder (expected a folder of NAME/VERSION/ exports)\n"
    )


def test_serve_reports_a_busy_port_before_loading_anything(tmp_path):
    from click.testing import CliRunner

    from cli import cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", str(tmp_path), "--port", str(port)])
    assert_one_line_error(result, f"--port {port}")
    assert result.output == f"error: --port {port}: address already in use on 127.0.0.1\n"


def test_requests_over_max_concurrent_requests_get_503(tmp_path):
    import http.client

    from seqtasks.serving.app import ServerSettings

    settings = ServerSettings(max_concurrent_requests=2, poll_seconds=0)
    with running_server(tmp_path, settings) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        first = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        first.request("GET", "/v1/models/m")
        assert first.getresponse().read() == b'{"error":"Could not find any versions of model m"}'
        over = requests.get(f"{base}/v1/models/m", timeout=10)  # while `first` stays open
        assert (over.status_code, over.text) == (503, "Service Unavailable")
        first.close()
        deadline = time.time() + 10
        while (again := requests.get(f"{base}/v1/models/m", timeout=10)).status_code == 503:
            assert time.time() < deadline, "still 503 after the other connection closed"
            time.sleep(0.05)
        assert error_of(again, 404) == "Could not find any versions of model m"
