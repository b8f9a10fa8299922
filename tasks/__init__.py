"""Task recipes, one file each. ``RECIPES`` maps a recipe name to its class."""

from __future__ import annotations

from seqtasks.errors import UserError
from tasks.captioning import CaptioningRecipe
from tasks.sentiment import SentimentRecipe
from tasks.translation import TranslationRecipe

RECIPES = {recipe.name: recipe for recipe in (SentimentRecipe, CaptioningRecipe, TranslationRecipe)}


def get_recipe(name: str):
    """An instance of the recipe called ``name``.

    Raises:
        UserError: for an unknown name, listing the known ones.
    """
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}; expected one of: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]()
