"""The captioning recipe through the CLI: train, predict, evaluate, plot-captions, bad input."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from cli import cli
from conftest import (
    FLICKR8K,
    TINY_CAPTIONING,
    assert_one_line_error,
    caption_csv,
    flickr_images,
    write_file,
)

TINY_SETS = [
    arg
    for key, value in TINY_CAPTIONING.items()
    for arg in ("--set", f"{key}={value}")
]  # fmt: skip


def run(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """16 real Flickr8k dev images (two re-encoded: PNG with alpha, grayscale JPEG) + a CSV."""
    folder = tmp_path_factory.mktemp("caption_cli") / "images"
    names, captions = flickr_images(folder, 16)
    pixels = tf.io.decode_jpeg(open(folder / names[0], "rb").read()).numpy()
    alpha = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 200, np.uint8)], -1)
    write_file(folder / "alpha.png", tf.io.encode_png(alpha).numpy())
    gray = tf.image.rgb_to_grayscale(pixels)
    write_file(folder / "gray.jpg", tf.io.encode_jpeg(gray).numpy())
    names = ["alpha.png", "gray.jpg", *names[2:]]
    csv = caption_csv(folder / "captions.csv", names, captions)
    return {"folder": folder, "names": names, "csv": csv}


@pytest.fixture(scope="module")
def cli_export(images, tmp_path_factory):
    root = tmp_path_factory.mktemp("caption_cli_run")
    export_dir = str(root / "export")
    result = run(
        "train", "captioning", "--data", images["csv"], "--beam-size", "2",
        "--export-dir", export_dir, "--run-dir", str(root / "run"),
        "--set", f"feature_cache={root / 'cache'}", "--json", *TINY_SETS,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["export"] == os.path.join(export_dir, "1")
    metrics = summary["metrics"]
    assert metrics["decoding"]["beam_size"] == 2
    assert {f"val_bleu_{n}" for n in range(1, 5)} <= set(metrics)
    return export_dir


def test_predict_prints_caption_tab_image_and_json(cli_export, images):
    paths = [str(images["folder"] / n) for n in images["names"][:2]]  # PNG+alpha, grayscale
    result = run("predict", cli_export, *paths)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split("\t")[1] for line in lines] == paths
    result = run("predict", cli_export, *paths, "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["image"] for r in rows] == paths
    assert [r["caption"] for r in rows] == [line.split("\t")[0] for line in lines]
    assert all(isinstance(r["score"], float) and r["score"] <= 0 for r in rows)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"just some notes\n", r"notes\.jpg: not an image \(expected JPEG, PNG, GIF or BMP"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 64, r"notes\.jpg: the image cannot be decoded"),
        (None, r"notes\.jpg: no such file"),
    ],
)
def test_predict_on_a_non_image_is_one_line_exit_2(cli_export, tmp_path, content, message):
    path = tmp_path / "notes.jpg"
    if content is not None:
        write_file(path, content)
    result = run("predict", cli_export, str(path))
    line = assert_one_line_error(result)
    assert re.search(message, line), result.stderr


def test_evaluate_reports_bleu_1_to_4_against_all_references(cli_export, images):
    result = run("evaluate", cli_export, "--data", images["csv"], "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["images"] == 16 and report["references_per_image"] == [5, 5]
    assert all(0.0 <= report[f"bleu_{n}"] <= 100.0 for n in range(1, 5))
    assert "nrefs:5" in report["bleu_signature"] and "cider_d" in report
    text = run("evaluate", cli_export, "--data", images["csv"]).stdout
    assert "BLEU-1" in text and "BLEU-4" in text and "CIDEr-D" in text


def test_evaluate_refuses_options_of_other_recipes_and_wrong_data(cli_export):
    result = run("evaluate", cli_export, "--data", FLICKR8K, "--source-lang", "en")
    assert_one_line_error(result)
    assert result.stderr.strip() == "error: --source-lang does not apply to captioning models"
    result = run("evaluate", cli_export, "--data", FLICKR8K, "--split", "test")
    assert_one_line_error(result, "none of its 1000 images has a caption")


def test_plot_captions_writes_a_png_with_and_without_attention(cli_export, images, tmp_path):
    paths = [str(images["folder"] / n) for n in images["names"][:3]]
    out = tmp_path / "grid.png"
    result = run("plot-captions", cli_export, *paths, "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)["captions"]
    predicted = [json.loads(line) for line in run("predict", cli_export, *paths, "--json").stdout.splitlines()]  # fmt: skip
    assert [r["caption"] for r in shown] == [r["caption"] for r in predicted]
    assert open(out, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    result = run(
        "plot-captions", cli_export, paths[0], "--attention", "-o", str(tmp_path / "a.png")
    )
    assert result.exit_code == 0, result.output
    assert os.path.getsize(tmp_path / "a.png") > 1000
    assert sorted(os.listdir(tmp_path)) == ["a.png", "grid.png"]  # no temporary files left


def test_plot_captions_refuses_other_models_and_non_images(cli_export, trained, tmp_path):
    out = tmp_path / "x.png"
    result = run("plot-captions", trained.export_path, __file__, "-o", str(out))
    assert_one_line_error(result, "needs a captioning model")
    result = run("plot-captions", cli_export, __file__, "-o", str(out))
    assert_one_line_error(result, "not an image")
    assert not out.exists()


# --- bad training data -----------------------------------------------------------------


def _flickr_folder(tmp_path, token_lines=None, split_lines=None, missing=False):
    """A Flickr8k-layout folder with 3 real images; token or split lines may be replaced.

    ``missing``: a 4th image has captions and is listed in the split, but has no file.
    """
    folder = tmp_path / "flickr"
    names, captions = flickr_images(folder / "Flicker8k_Dataset", 3)
    if missing:
        names, captions = [*names, "missing.jpg"], [*captions, ["a dog runs"]]
    tokens = token_lines or [f"{n}#{i}\t{c}" for n, cs in zip(names, captions) for i, c in enumerate(cs)]  # fmt: skip
    write_file(folder / "Flickr8k.token.txt", "\n".join(tokens) + "\n")
    split = names if split_lines is None else split_lines
    write_file(folder / "Flickr_8k.trainImages.txt", "".join(f"{n}\n" for n in split))
    return str(folder)


def _csv_with_a_text_file(tmp_path):
    folder = tmp_path / "photos"
    names, captions = flickr_images(folder, 2)
    write_file(folder / "notes.jpg", "not a picture\n")
    return caption_csv(folder / "c.csv", [*names, "notes.jpg"], [*captions, ["a note"]])


def _csv_with_a_corrupt_jpeg(tmp_path):
    folder = tmp_path / "photos"
    names, captions = flickr_images(folder, 2)
    blob = open(folder / names[0], "rb").read()
    write_file(folder / "cut.jpg", blob[:20])
    return caption_csv(folder / "c.csv", [*names, "cut.jpg"], [*captions, ["a cut photo"]])


def _csv_with_punctuation_captions(tmp_path):
    folder = tmp_path / "photos"
    names, captions = flickr_images(folder, 2)
    return caption_csv(folder / "c.csv", names, [captions[0], [" . ", "?!"]])


BAD_INPUTS = {
    "caption line without a tab": (
        lambda p: ["--data", _flickr_folder(p, token_lines=["a.jpg#0 a dog runs"])],
        r"Flickr8k\.token\.txt:1: expected '<image>#<n><TAB><caption>', found no tab",
    ),
    "caption key without #n": (
        lambda p: ["--data", _flickr_folder(p, token_lines=["a.jpg\ta dog runs"])],
        r"Flickr8k\.token\.txt:1: expected .*without '#<n>'",
    ),
    "image listed but missing": (
        lambda p: ["--data", _flickr_folder(p, missing=True)],
        r"Flickr_8k\.trainImages\.txt:4: image missing\.jpg is not in .*Flicker8k_Dataset",
    ),
    "empty split": (
        lambda p: ["--data", _flickr_folder(p, split_lines=[])],
        r"Flickr_8k\.trainImages\.txt: no images in the split list",
    ),
    "a text file as an image": (
        lambda p: ["--data", _csv_with_a_text_file(p)],
        r"notes\.jpg: not an image \(expected JPEG, PNG, GIF or BMP",
    ),
    "a truncated JPEG, encoder trained end to end": (
        lambda p: ["--data", _csv_with_a_corrupt_jpeg(p), "--set", "encoder=cnn"],
        r"cut\.jpg: the image cannot be decoded",
    ),
    "a truncated JPEG, cached features": (
        lambda p: ["--data", _csv_with_a_corrupt_jpeg(p)],
        r"cut\.jpg: the image cannot be decoded",
    ),
    "captions without words": (
        lambda p: ["--data", _csv_with_punctuation_captions(p)],
        r"image .*: no caption has a word in it",
    ),
    "no such weights file": (
        lambda p: ["--data", _flickr_folder(p), "--set", "encoder_weights=/no/such.h5"],
        r"config field 'encoder_weights': no such file: /no/such\.h5",
    ),
    "fine-tuning the small CNN": (
        lambda p: [
            "--data",
            _flickr_folder(p),
            "--set",
            "encoder=cnn",
            "--set",
            "fine_tune_blocks=2",
        ],  # fmt: skip
        r"'fine_tune_blocks' applies to encoder=mobilenet_v2",
    ),
    "unknown decoder": (
        lambda p: ["--data", _flickr_folder(p), "--model", "gru-attention"],
        r"config field 'model': expected one of lstm, attention, transformer",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_captioning_data_is_one_line_exit_2_and_writes_nothing(tmp_path, case):
    make_args, message = BAD_INPUTS[case]
    export_dir, run_dir = tmp_path / "export", tmp_path / "run"
    result = run(
        "train", "captioning", *make_args(tmp_path), "--export-dir", str(export_dir),
        "--run-dir", str(run_dir), "--set", f"feature_cache={tmp_path / 'cache'}", *TINY_SETS,
    )  # fmt: skip
    line = assert_one_line_error(result)
    assert line.startswith("error: "), result.stderr
    assert re.search(message, line), line
    assert not export_dir.exists() and not run_dir.exists()
    assert not (tmp_path / "cache").exists()


def test_captions_all_over_sequence_length_are_one_line_exit_2(tmp_path):
    folder = tmp_path / "photos"
    names, captions = flickr_images(folder, 2)
    data = caption_csv(folder / "c.csv", names, captions)
    result = run(
        "train", "captioning", "--data", data, "--export-dir", str(tmp_path / "export"),
        "--run-dir", str(tmp_path / "run"), "--set", f"feature_cache={tmp_path / 'cache'}",
        *TINY_SETS, "--set", "sequence_length=4", "--set", "encoder=cnn",
    )  # fmt: skip
    line = assert_one_line_error(result)
    assert re.fullmatch(
        r"error: .*c\.csv: all \d+ captions are longer than sequence_length=4 subword tokens "
        r"\(\[START\]/\[END\] included\); raise it with --set sequence_length=N",
        line,
    ), line
    assert not (tmp_path / "export").exists()
