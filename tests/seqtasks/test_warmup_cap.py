"""The Transformer's default warm-up is capped at a share of the run's optimizer steps;
an explicit warm-up is honoured as given."""

import dataclasses

import keras
import numpy as np
import pytest

from seqtasks.losses import WARMUP_SHARE, capped_warmup, training_steps
from seqtasks.recipe import Prepared, explicit_fields
from tasks import get_recipe


def prepared(train_examples):
    return Prepared(None, None, None, {"data": {"train_examples": train_examples}})


def first_learning_rate(recipe, config, prep) -> float:
    """The learning rate of the compiled optimizer's first step."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    recipe.compile_model(model, config, prep)
    return float(np.asarray(model.optimizer.learning_rate))


def test_helpers():
    assert WARMUP_SHARE == 0.1
    assert training_steps(2700, 64, 1) == 43 and training_steps(2700, 64, 3) == 129
    assert capped_warmup(1000, 48) == 5  # 10% of 48, rounded
    assert capped_warmup(1000, 4) == 1  # at least one step
    assert capped_warmup(1000, 20_000) == 1000  # a long run keeps its warm-up
    assert capped_warmup(1000, 0) == 1000  # unknown length: unchanged


@pytest.mark.parametrize("name", ["translation", "captioning"])
def test_a_short_run_caps_the_default_warmup(name):
    recipe = get_recipe(name)
    config = recipe.make_config(model="transformer", epochs=1, batch_size=64)
    default = config.warmup_steps
    assert default == 1000 and "warmup_steps" not in explicit_fields(config)
    # 3,000 pairs, 10% held out: 2,700 training pairs, 43 steps of 64 -> 4 warm-up steps.
    assert recipe.warmup_steps(config, prepared(2700)) == 4
    rate = first_learning_rate(recipe, config, prepared(2700))
    assert rate == pytest.approx(config.learning_rate / 4, rel=1e-5)
    # Without the run's size (or a long run) the default stays.
    assert recipe.warmup_steps(config) == default
    assert recipe.warmup_steps(config, Prepared(None, None, None, {})) == default
    long = recipe.make_config(model="transformer", epochs=20)
    assert recipe.warmup_steps(long, prepared(200_000)) == default


@pytest.mark.parametrize("value", ["1000", "300"])
def test_an_explicit_warmup_is_honoured(value):
    recipe = get_recipe("translation")
    config = recipe.make_config(model="transformer", epochs=1, warmup_steps=value)
    assert "warmup_steps" in explicit_fields(config)
    assert recipe.warmup_steps(config, prepared(2700)) == int(value)
    rate = first_learning_rate(recipe, config, prepared(2700))
    assert rate == pytest.approx(config.learning_rate / int(value), rel=1e-5)


def test_a_non_default_warmup_without_a_record_is_honoured():
    # E.g. fine-tuning's short warm-up, set with dataclasses.replace (which drops the record).
    recipe = get_recipe("translation")
    config = dataclasses.replace(recipe.make_config(epochs=1), warmup_steps=100)
    assert explicit_fields(config) == frozenset()
    assert recipe.warmup_steps(config, prepared(2700)) == 100


def test_the_record_is_no_part_of_the_config():
    recipe = get_recipe("translation")
    given = recipe.make_config(warmup_steps=1000)
    assert given == recipe.make_config() and given.to_dict() == recipe.make_config().to_dict()
    assert explicit_fields(given) == {"warmup_steps"}
    finetune = recipe.finetune_config({"config": {"epochs": 3}}, warmup_steps=50)
    assert finetune.warmup_steps == 50 and "warmup_steps" in explicit_fields(finetune)
