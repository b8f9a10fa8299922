"""``train --preset NAME``: a published setting as ``--set`` values that flags override,
its warm-up never capped, listed by ``recipes``; an unknown name is one error line."""

import pytest
from click.testing import CliRunner

from cli import cli
from conftest import SHARED_DATA, assert_one_line_error
from tasks.presets import presets, with_preset
from tasks.registry import entry


def test_the_preset_gives_its_settings_and_the_user_overrides_them():
    overrides = with_preset("translation", "wu2021-multi30k", {"dropout": 0.2, "epochs": 3})
    config = entry("translation").make_config(**overrides)
    assert (config.num_layers, config.hidden_dim, config.intermediate_dim) == (4, 128, 512)
    assert config.shared_vocabulary and config.tie_embeddings and config.average_last == 10
    assert (config.learning_rate, config.warmup_steps, config.beam_size) == (5e-3, 2000, 5)
    assert config.dropout == 0.2 and config.epochs == 3  # the user's values win
    assert with_preset("translation", None, {"epochs": 3}) == {"epochs": 3}


def test_the_presets_warm_up_is_explicit_so_a_short_run_does_not_cap_it():
    from seqtasks.recipe import Prepared
    from tasks import get_recipe

    config = entry("translation").make_config(**with_preset("translation", "wu2021-multi30k", {}))
    short = Prepared(train=None, validation=None, info=None,
                     metadata={"data": {"train_examples": 640}})  # fmt: skip
    assert get_recipe("translation").warmup_steps(config, short) == 2000
    default = entry("translation").make_config()
    assert get_recipe("translation").warmup_steps(default, short) < default.warmup_steps


def test_an_unknown_preset_is_one_error_line_and_recipes_lists_them():
    result = CliRunner().invoke(
        cli, ["train", "translation", "--data", f"{SHARED_DATA}/multi30k", "--preset", "big"]
    )
    assert_one_line_error(result, "--preset 'big'", "wu2021-multi30k")
    listing = CliRunner().invoke(cli, ["recipes", "translation"])
    assert listing.exit_code == 0 and "--preset wu2021-multi30k" in listing.output
    assert presets("sentiment") == {}


def test_the_language_models_preset_is_the_measured_mingru_stack():
    overrides = with_preset("language-model", "mingru-conv", {"tokenizer": "char"})
    config = entry("language-model").make_config(**overrides)
    assert (config.model, config.num_layers, config.conv_kernel_size) == ("mingru", 3, 4)
    assert config.dropout == 0.1 and config.tokenizer == "char"
    listing = CliRunner().invoke(cli, ["recipes", "language-model"])
    assert listing.exit_code == 0 and "--preset mingru-conv" in listing.output
    # The preset's model is the user's to change: a Transformer refuses the convolution.
    result = CliRunner().invoke(
        cli,
        ["train", "language-model", "--data", f"{SHARED_DATA}/tinyshakespeare/train.txt",
         "--preset", "mingru-conv", "--model", "transformer"],
    )  # fmt: skip
    assert_one_line_error(result, "conv_kernel_size")


def test_the_captioning_preset_is_the_measured_224_px_attention_setting():
    settings = presets("captioning")["flickr8k-224px"]["settings"]
    assert settings == {
        "model": "attention", "image_size": 224, "attention_penalty": 1.0, "attention_gate": True,
        "average_last": 3, "beam_size": 5, "length_penalty": 0.6, "no_repeat_ngram_size": 2,
    }  # fmt: skip
    config = entry("captioning").make_config(**with_preset("captioning", "flickr8k-224px", {}))
    assert (config.model, config.image_size, config.attention_penalty) == ("attention", 224, 1.0)
    assert config.attention_gate is True
    assert config.average_last == 3 and config.select_by == "loss"
    assert (config.beam_size, config.length_penalty, config.no_repeat_ngram_size) == (5, 0.6, 2)
    listing = CliRunner().invoke(cli, ["recipes", "captioning"])
    assert listing.exit_code == 0 and "--preset flickr8k-224px" in listing.output
    # The penalty belongs to the attention decoder: another decoder refuses it, one line.
    result = CliRunner().invoke(
        cli,
        ["train", "captioning", "--data", f"{SHARED_DATA}/flickr8k", "--preset",
         "flickr8k-224px", "--model", "lstm"],
    )  # fmt: skip
    assert_one_line_error(result, "attention_penalty")


@pytest.mark.parametrize("recipe", ["sentiment"])
def test_other_recipes_have_no_presets_yet(recipe):
    result = CliRunner().invoke(cli, ["train", recipe, "--data", "x", "--preset", "any"])
    assert_one_line_error(result, "--preset 'any'", "presets are: none")
