"""The translation recipe through the CLI: train, predict, evaluate, plot-attention, bad input."""

import gzip
import json
import os
import zipfile

import pytest
from click.testing import CliRunner

from cli import cli
from conftest import SHARED_DATA, TINY_TRANSLATION, assert_one_line_error, write_file

MULTI30K = os.path.join(SHARED_DATA, "multi30k")
TINY_SETS = [
    arg
    for key, value in TINY_TRANSLATION.items()
    if key not in ("beam_size", "max_examples")  # given as flags, or the whole sample is used
    for arg in ("--set", f"{key}={value}")
]


def run(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def real_pairs(folder, n=150):
    """The first ``n`` real Multi30k training pairs as two plain files in ``folder``."""
    paths = []
    for lang in ("en", "de"):
        with gzip.open(os.path.join(MULTI30K, f"train.{lang}.gz"), "rt", encoding="utf-8") as f:
            lines = [next(f) for _ in range(n)]
        paths.append(write_file(folder / f"pairs.{lang}", "".join(lines)))
    return paths


@pytest.fixture(scope="module")
def cli_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("translation_cli")
    source, target = real_pairs(root)
    export_dir = str(root / "export")
    result = run(
        "train", "translation", "--source-file", source, "--target-file", target,
        "--model", "rnn-attention", "--beam-size", "3", "--export-dir", export_dir,
        "--run-dir", str(root / "run"), "--json", *TINY_SETS,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["export"] == os.path.join(export_dir, "1")
    assert summary["metrics"]["decoding"]["beam_size"] == 3
    return export_dir


def test_predict_prints_translations_and_json(cli_export):
    result = run("predict", cli_export, "A man is riding a bicycle.", "Two dogs play.")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2
    result = run("predict", cli_export, "A man is riding a bicycle.", "", "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["A man is riding a bicycle.", ""]
    assert rows[1] == {"text": "", "translation": "", "score": 0.0}
    assert rows[0]["score"] < 0 and isinstance(rows[0]["translation"], str)


def test_evaluate_reports_sacrebleu_with_signature(cli_export):
    result = run(
        "evaluate", cli_export, "--data", MULTI30K, "--split", "val", "--max-examples", "12",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["segments"] == 12 and report["split"] == "val"
    assert report["bleu_signature"].startswith("nrefs:1|case:mixed")
    assert report["chrf_signature"].startswith("nrefs:1|case:mixed")
    assert report["decoding"]["strategy"] == "beam" and report["decoding"]["beam_size"] == 3
    assert report["perplexity"] > 1.0
    text = run("evaluate", cli_export, "--data", MULTI30K, "--split", "val", "--max-examples", "5")
    assert "BLEU" in text.stdout and "nrefs:1" in text.stdout


def test_plot_attention_writes_a_png_of_the_same_translation(cli_export, tmp_path):
    sentence = "A man is riding a bicycle."
    output = str(tmp_path / "attention.png")
    result = run("plot-attention", cli_export, sentence, "-o", output, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    with open(output, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert info["target_tokens"][-1] == "[END]" or len(info["target_tokens"]) == 23
    assert info["source_tokens"][:2] == ["A", "man"]
    # The plot decodes with the export's Keras model and options: same translation.
    predicted = json.loads(run("predict", cli_export, sentence, "--json").stdout)
    assert info["translation"] == predicted["translation"]
    assert info["score"] == pytest.approx(predicted["score"], abs=1e-4)


def test_plot_attention_refuses_a_sentiment_model_and_empty_input(cli_export, trained, tmp_path):
    result = run("plot-attention", trained.export_path, "good", "-o", str(tmp_path / "x.png"))
    assert_one_line_error(result, "needs a translation model")
    result = run("plot-attention", cli_export, " ", "-o", str(tmp_path / "x.png"))
    assert_one_line_error(result, "empty")
    assert not os.path.exists(tmp_path / "x.png")


def test_evaluate_refuses_options_of_other_recipes(cli_export):
    result = run("evaluate", cli_export, "--data", MULTI30K, "--label-map", "0=neg")
    assert_one_line_error(result)
    assert result.stderr.strip() == "error: --label-map does not apply to translation models"


def _folder(tmp_path, files):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, content in files.items():
        write_file(folder / name, content)
    return str(folder)


def _zip_without_pairs(tmp_path):
    path = tmp_path / "pairs.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("README.md", "no pairs here")
    return str(path)


BAD_INPUTS = {
    "mismatched line counts": (
        lambda p: ["--data", _folder(p, {"train.en": "a\nb\nc\n", "train.de": "x\ny\n"})],
        r"line counts differ: .*train\.en has 3 lines, .*train\.de has 2",
    ),
    "missing language file": (
        lambda p: ["--data", _folder(p, {"train.en": "a\n", "train.fr": "b\n"})],
        r"no train\.de\[\.gz\] for language 'de'; split 'train' has: en, fr",
    ),
    "unknown language code": (
        lambda p: ["--data", _folder(p, {"train.en": "a\n"}), "--target-lang", "german!"],
        r"--target-lang: expected a language code such as en or de; received: 'german!'",
    ),
    "zip without a pair file": (
        lambda p: ["--data", _zip_without_pairs(p)],
        r"expected exactly one \.tsv/\.txt pair file in the zip .*found: none",
    ),
    "empty split": (
        lambda p: ["--data", _folder(p, {"train.en": "", "train.de": ""})],
        r"no sentence pairs found \(split 'train'\)",
    ),
    "non-UTF-8 line": (
        lambda p: ["--data", _folder(p, {"train.en": b"ok\n\xff\xfe bad\n", "train.de": "a\nb\n"})],
        r"train\.en:2: not valid UTF-8",
    ),
    "validation split of a pair file": (
        lambda p: [
            "--data",
            write_file(p / "pairs.tsv", "a\tb\nc\td\n"),
            "--set",
            "validation_data=val",
        ],  # fmt: skip
        r"'validation_data' names a split, so --data must be a folder",
    ),
    "one of two files": (
        lambda p: ["--source-file", write_file(p / "a.en", "a\n")],
        r"--source-file and --target-file go together",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_translation_data_is_one_line_exit_2_and_writes_nothing(tmp_path, case):
    make_args, message = BAD_INPUTS[case]
    export_dir, run_dir = tmp_path / "export", tmp_path / "run"
    result = run(
        "train", "translation", *make_args(tmp_path), "--export-dir", str(export_dir),
        "--run-dir", str(run_dir), *TINY_SETS,
    )  # fmt: skip
    line = assert_one_line_error(result)
    assert line.startswith("error: "), result.stderr
    import re

    assert re.search(message, line), line
    assert not export_dir.exists() and not run_dir.exists()
