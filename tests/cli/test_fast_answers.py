"""A user's mistake answers before TensorFlow is imported (issue 16: fast answers).

Each mistake runs ``cli.py`` in a subprocess whose atexit hook prints whether
``tensorflow`` and ``keras`` are in ``sys.modules`` when it exits: that, not the
machine's speed, is what makes the answer fast (TensorFlow's import takes seconds). The
time bound is loose on purpose.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, assert_one_line_error
from seqtasks.commands.common import plural, validation_line

PROBE = (
    "import atexit, runpy, sys\n"
    "atexit.register(lambda: print('imported:', 'tensorflow' in sys.modules, "
    "'keras' in sys.modules, file=sys.stderr))\n"
    "sys.argv = ['cli.py', *sys.argv[1:]]\n"
    "runpy.run_path('cli.py', run_name='__main__')\n"
)
LOOSE_SECONDS = 10.0  # TensorFlow's import alone takes about 5 s on the 2-core CI machine


def run_light(*args: str) -> subprocess.CompletedProcess:
    """Run ``cli.py ARGS``; assert neither TensorFlow nor Keras was imported; return the
    run with the probe's line taken out of stderr."""
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.monotonic() - start
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("imported:"), result.stderr[-3000:]
    assert lines[-1] == "imported: False False", f"{args}: {lines[-1]} (tensorflow, keras)"
    assert seconds < LOOSE_SECONDS, f"{args}: {seconds:.1f} s"
    result.stderr = "\n".join(lines[:-1]) + ("\n" if len(lines) > 1 else "")
    return result


@pytest.fixture(scope="module")
def fake_export(tmp_path_factory):
    """A folder that reads as a sentiment export (metadata, an empty saved_model.pb): what
    finetune checks before loading anything."""
    base = tmp_path_factory.mktemp("fake") / "sentiment"
    extra = base / "1" / "assets.extra"
    extra.mkdir(parents=True)
    (base / "1" / "saved_model.pb").write_bytes(b"")
    metadata = {
        "format": "seqtasks-export",
        "format_version": 2,
        "task": "sentiment",
        "task_type": "many-to-one",
        "model": "bilstm",
        "signature": "serving_default",
        "labels": ["neg", "pos"],
    }
    (extra / "metadata.json").write_text(json.dumps(metadata))
    return str(base)


@pytest.mark.parametrize(
    "args, phrases",
    [
        (["train", "sentiment", "--epochs", "0"], ["config field 'epochs'", ">= 1", "0"]),
        (["train", "sentimnt"], ["unknown recipe 'sentimnt'", "sentiment, translation"]),
        (["train", "sentiment"], ["no training data: pass --data PATH"]),
        (["train", "translation"], ["no training data", "--source-file and --target-file"]),
        (["train", "captioning"], ["no training data", "a Flickr8k folder"]),
        (["train", "translation", "--data", "/nonexistent"], ["/nonexistent: no such file"]),
        (["train", "captioning", "--data", "/nonexistent"], ["/nonexistent: no such file"]),
        (["train", "sentiment", "--data", "/nonexistent"], ["/nonexistent: no such file"]),
        (
            ["train", "sentiment", "--data", "x", "--set", "dropout=high"],
            ["config field 'dropout'", "float", "'high'"],
        ),
        (
            ["train", "translation", "--data", "x", "--set", "decoding=best"],
            ["config field 'decoding'", "best"],
        ),
        (
            ["train", "captioning", "--data", "x", "--model", "gpt"],
            ["config field 'model'", "gpt"],
        ),
        (["recipes", "sentimnt"], ["unknown recipe 'sentimnt'"]),
        (["predict", "/nonexistent/path", "x"], ["/nonexistent/path: no such model folder"]),
        (["evaluate", "saved_models/none", "--data", "x"], ["saved_models/none: no such model"]),
        (["finetune", "saved_models/none", "--data", "x"], ["saved_models/none: no such model"]),
    ],
)
def test_a_mistake_answers_before_tensorflow(args, phrases):
    assert_one_line_error(run_light(*args), *phrases)


def test_finetune_data_mistakes_answer_before_tensorflow(fake_export):
    assert_one_line_error(run_light("finetune", fake_export), "no data: pass --data PATH")
    assert_one_line_error(
        run_light("finetune", fake_export, "--data", "/nonexistent"), "/nonexistent: no such file"
    )
    assert_one_line_error(
        run_light("finetune", fake_export, "--data", "x", "--source-lang", "en"),
        "--source-lang",
        "does not apply to sentiment models",
    )


def test_evaluate_mistakes_on_an_export_answer_before_tensorflow(fake_export):
    assert_one_line_error(run_light("evaluate", fake_export), "no data: pass --data PATH")
    assert_one_line_error(
        run_light("evaluate", fake_export, "--data", "/nonexistent.tsv"),
        "/nonexistent.tsv: no such file",
    )
    assert_one_line_error(
        run_light("evaluate", fake_export, "--data", "x", "--split", "dev", "--source-lang", "en"),
        "--source-lang",
        "does not apply to sentiment models",
    )


def test_a_tfds_name_is_not_a_path():
    """``tfds:NAME`` passes the path check; the config mistake after it still answers."""
    result = run_light("train", "sentiment", "--data", "tfds:imdb_reviews", "--epochs", "0")
    assert_one_line_error(result, "config field 'epochs'")


@pytest.mark.parametrize(
    "args, expected",
    [
        (["recipes"], "sentiment (many-to-one)"),
        (["recipes", "translation"], "beam_size"),
        (["recipes", "captioning", "--json"], '"name": "encoder"'),
        (["--help"], "Commands:"),
        (["train", "--help"], "--set KEY=VALUE"),
        (["finetune", "--help"], "--new-head"),
        (["predict", "--help"], "MODEL_DIR"),
        (["evaluate", "--help"], "--label-map"),
        (["serve", "--help"], "ROOT"),
    ],
)
def test_listings_and_help_import_no_tensorflow(args, expected):
    result = run_light(*args)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_the_registry_agrees_with_the_recipe_classes():
    from tasks import RECIPES, get_recipe
    from tasks.registry import ENTRIES

    assert list(ENTRIES) == list(RECIPES) == [
        "sentiment",
        "captioning",
        "translation",
        "language-model",
    ]
    for name, recipe in RECIPES.items():
        known = ENTRIES[name]
        assert known.recipe_class() is recipe
        assert known.config_class is recipe.config_class
        assert (
            known.task_type,
            known.description,
            known.models,
            known.extra_commands,
            known.evaluate_options,
        ) == (
            recipe.task_type,
            recipe.description,
            recipe.models,
            recipe.extra_commands,
            recipe.evaluate_options,
        )
        assert known.make_config(epochs="3") == get_recipe(name).make_config(epochs="3")


def test_the_moved_constants_are_the_same_objects():
    import seqtasks.choices as choices
    from seqtasks.decoding import STRATEGIES, DecodingConfig
    from seqtasks.decoding_config import DecodingConfig as LightDecodingConfig
    from seqtasks.models.captioning import CAPTION_MODELS
    from seqtasks.models.classifier import POOLINGS
    from seqtasks.models.encoders import ENCODERS
    from seqtasks.models.seq2seq import ATTENTION_SCORES, RNN_CELLS, SEQ2SEQ_MODELS
    from seqtasks.subword import DEFAULT_MIN_FREQUENCY
    from tasks.captioning import CaptioningConfig
    from tasks.sentiment import SentimentConfig
    from tasks.translation import TranslationConfig

    assert DecodingConfig is LightDecodingConfig
    assert STRATEGIES is choices.STRATEGIES == ("greedy", "beam", "sample")
    assert ENCODERS is choices.ENCODERS and POOLINGS is choices.POOLINGS
    assert SEQ2SEQ_MODELS is choices.SEQ2SEQ_MODELS and CAPTION_MODELS is choices.CAPTION_MODELS
    assert ATTENTION_SCORES is choices.ATTENTION_SCORES and RNN_CELLS is choices.RNN_CELLS
    assert DEFAULT_MIN_FREQUENCY == 10
    assert SentimentConfig.__module__ == "tasks.sentiment_config"
    assert TranslationConfig.__module__ == "tasks.translation_config"
    assert CaptioningConfig.__module__ == "tasks.captioning_config"


def test_one_epoch_is_singular():
    assert plural(1, "epoch") == "1 epoch" and plural(3, "epoch") == "3 epochs"
    assert plural(0, "epoch") == "0 epochs"
    one = validation_line({"val_loss": 0.5, "epochs_run": 1, "train_seconds": 4.2})
    assert one == "validation: loss 0.5000  (1 epoch, 4 s)"
    two = validation_line({"val_loss": 0.5, "epochs_run": 2, "train_seconds": 4.2})
    assert two.endswith("(2 epochs, 4 s)")


def test_new_head_into_the_source_folder_warns(fake_export, tmp_path):
    """--new-head without --export-dir exports into the served folder: a warning names it
    and --export-dir (the run then fails on the fake export, after the warning)."""
    data = tmp_path / "new.csv"
    data.write_text("text,label\ngood film,pos\n")
    result = subprocess.run(
        [sys.executable, "cli.py", "finetune", fake_export, "--data", str(data), "--new-head"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    warning = next(line for line in result.stderr.splitlines() if "--new-head" in line)
    assert os.path.realpath(fake_export) in warning or fake_export in warning
    assert "new labels" in warning and "--export-dir DIR" in warning
    elsewhere = subprocess.run(
        [sys.executable, "cli.py", "finetune", fake_export, "--data", str(data), "--new-head"]
        + ["--export-dir", str(tmp_path / "elsewhere")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert elsewhere.returncode != 0
    assert "--new-head:" not in elsewhere.stderr
