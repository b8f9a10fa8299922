import dataclasses

import pytest

from seqtasks.config import apply_overrides, parse_assignments
from seqtasks.errors import ConfigError
from tasks import get_recipe


def test_defaults_and_typed_overrides():
    config = get_recipe("sentiment").make_config(
        epochs="3", dropout="0.25", model="gru", max_examples="none", text_column="body"
    )
    assert config.epochs == 3 and isinstance(config.epochs, int)
    assert config.dropout == 0.25
    assert config.model == "gru"
    assert config.max_examples is None
    assert config.text_column == "body"
    assert config.export_dir == "saved_models/sentiment"
    assert dataclasses.replace(config, model="lstm").validate().model == "lstm"


def test_round_trip_through_dict():
    recipe = get_recipe("sentiment")
    config = recipe.make_config(epochs=2, hidden_dim=7, data="x.tsv", max_examples=10)
    again = recipe.config_class.from_dict(config.to_dict())
    assert again == config
    assert again.to_json() == config.to_json()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"no_such_field": "1"}, "unknown config field 'no_such_field'; expected one of: "),
        ({"epochs": "three"}, "config field 'epochs': expected int; received: 'three'"),
        ({"epochs": "0"}, "config field 'epochs': expected a value >= 1; received: 0"),
        ({"dropout": "1.5"}, "config field 'dropout': expected a value <= 0.9; received: 1.5"),
        (
            {"model": "cnn"},
            "config field 'model': expected one of rnn, lstm, gru, bilstm, transformer",
        ),
        (
            {"pooling": "sum"},
            "config field 'pooling': expected one of max, mean, final, concat; received: 'sum'",
        ),
        ({"epochs": 2.5}, "config field 'epochs': expected int; received: 2.5"),
        ({"seed": "-1"}, "config field 'seed': expected a value >= 0; received: -1"),
        ({"learning_rate": "inf"}, "config field 'learning_rate': expected a finite number"),
        (
            {"learning_rate": "0"},
            "config field 'learning_rate': expected a value > 0.0; received: 0.0",
        ),
    ],
)
def test_bad_overrides_name_the_field(overrides, message):
    with pytest.raises(ConfigError) as e:
        get_recipe("sentiment").make_config(**overrides)
    assert message in str(e.value)


def test_parse_assignments():
    assert parse_assignments(["a=1", " b = x=y "]) == {"a": "1", "b": "x=y"}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_assignments(["dropout"])


def test_apply_overrides_keeps_original():
    config = get_recipe("sentiment").make_config()
    changed = apply_overrides(config, {"num_layers": "2"})
    assert (config.num_layers, changed.num_layers) == (1, 2)


def test_describe_lists_every_field_with_help():
    rows = get_recipe("sentiment").make_config().describe()
    names = [row["name"] for row in rows]
    assert {"model", "epochs", "dropout", "sequence_length", "seed"} <= set(names)
    assert all(row["help"] for row in rows)
    model = next(row for row in rows if row["name"] == "model")
    assert model["default"] == "bilstm" and "transformer" in model["choices"]
    export_dir = next(row for row in rows if row["name"] == "export_dir")
    assert export_dir["default"] == "saved_models/sentiment"
