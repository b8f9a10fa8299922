"""Recipe configs composed of field groups (seqtasks.config_groups), retune, data fields."""

from __future__ import annotations

import dataclasses

import pytest

from seqtasks.config import TrainConfig, option, retune
from seqtasks.config_groups import (
    RecordFields,
    RNNFields,
    ScheduleFields,
    SubwordFields,
    TransformerFields,
)
from seqtasks.errors import ConfigError


def _names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_generation_recipes_compose_the_groups_and_retune_their_defaults():
    from tasks import get_recipe

    groups = (TransformerFields, RNNFields, SubwordFields, ScheduleFields, RecordFields)
    for name, vocabulary, hidden, dropout in (
        ("translation", 8000, 256, 0.1),
        ("captioning", 5000, 512, 0.3),
    ):
        config_class = get_recipe(name).config_class
        for group in groups:
            assert issubclass(config_class, group)
            assert _names(group) <= _names(config_class)
        config = config_class()
        assert (config.vocabulary_size, config.hidden_dim, config.dropout) == (
            vocabulary,
            hidden,
            dropout,
        )
        # A retuned field keeps the group's constraints.
        field = config_class.__dataclass_fields__["vocabulary_size"]
        assert (
            field.metadata["min"]
            == SubwordFields.__dataclass_fields__["vocabulary_size"].metadata["min"]
        )


def test_retune_changes_the_default_and_keeps_the_rest_of_the_metadata():
    @dataclasses.dataclass(frozen=True)
    class Config(SubwordFields, TrainConfig):
        sequence_length: int = retune(SubwordFields, "sequence_length", 12, help="Shorter.")

    field = Config.__dataclass_fields__["sequence_length"]
    assert Config().sequence_length == 12
    assert field.metadata["help"] == "Shorter."
    assert field.metadata["min"] == 4  # the group's bound
    with pytest.raises(ConfigError, match="'sequence_length': expected a value >= 4"):
        Config(sequence_length=3).validate()
    with pytest.raises(KeyError):
        retune(SubwordFields, "no_such_field", 1)


@pytest.mark.parametrize("name", ["translation", "captioning"])
def test_the_transformer_group_checks_width_against_heads(name):
    from tasks import get_recipe

    recipe = get_recipe(name)
    with pytest.raises(ConfigError, match="'hidden_dim' and 'num_heads'.*received: 30 and 4"):
        recipe.make_config(model="transformer", hidden_dim=30, num_heads=4)
    # Other architectures ignore the heads; the recipe's own checks still run after the group's.
    other = "rnn-attention" if name == "translation" else "attention"
    assert recipe.make_config(model=other, hidden_dim=30, num_heads=4).hidden_dim == 30
    if name == "captioning":
        with pytest.raises(ConfigError, match="fine_tune_blocks"):
            recipe.make_config(model="transformer", encoder="cnn", fine_tune_blocks=2)
        with pytest.raises(ConfigError, match="'attention_gate' applies to model=attention"):
            recipe.make_config(model="lstm", attention_gate=True)
        with pytest.raises(ConfigError, match="fine_tune_lr_factor"):
            recipe.make_config(fine_tune_lr_factor=0.0)


def test_data_fields_are_the_fields_the_recipe_marks_as_data():
    from seqtasks.recipe import Recipe
    from tasks import RECIPES

    assert isinstance(Recipe.__dict__["data_fields"], property)  # the base names no fields
    expected = {
        "sentiment": {"text_column", "label_column", "format", "on_bad_rows"},
        "translation": {"source_lang", "target_lang", "source_file", "reverse", "split"},
        "captioning": {"image_dir", "captions_file", "caption_column", "validation_data"},
        "language-model": {"mode", "text_column", "split", "validation_data", "format"},
    }
    for name, recipe_class in RECIPES.items():
        fields = recipe_class().data_fields
        assert {"data", "max_examples"} | expected[name] <= set(fields), name
        assert not {"model", "hidden_dim", "vocabulary_size", "epochs"} & set(fields), name


def test_finetune_config_starts_data_fields_from_the_defaults_and_keeps_the_model():
    from tasks import get_recipe

    recipe = get_recipe("captioning")
    saved = recipe.make_config(
        data="old.csv", image_dir="old_images", caption_column="text", hidden_dim=64, num_heads=4
    )
    config = recipe.finetune_config({"config": saved.to_dict()}, data="new.csv")
    assert (config.data, config.image_dir, config.caption_column) == ("new.csv", None, None)
    assert config.hidden_dim == 64


def test_a_data_flag_in_a_custom_config():
    @dataclasses.dataclass(frozen=True)
    class Config(TrainConfig):
        column: str = option("text", "A column.", data=True)
        width: int = option(3, "A width.")

    import types

    from seqtasks.recipe import Recipe

    recipe = types.SimpleNamespace(config_class=Config)
    assert Recipe.data_fields.fget(recipe) == ("data", "max_examples", "column")
