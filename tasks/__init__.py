"""Task recipes, one module (or package) each. ``RECIPES`` maps a recipe name to its class.

Importing :mod:`tasks` imports no recipe (each imports TensorFlow): :mod:`tasks.registry`
knows their names, descriptions and config classes, and ``RECIPES`` (all the classes)
or :func:`get_recipe` (one) import them when asked.
"""

from __future__ import annotations

from tasks.registry import ENTRIES, entry


def get_recipe(name: str):
    """An instance of the recipe called ``name`` (imports that recipe's module).

    Raises:
        UserError: for an unknown name, listing the known ones.
    """
    return entry(name).recipe_class()()


def __getattr__(name: str):
    if name == "RECIPES":  # every recipe class, imported on first use (PEP 562)
        return {key: value.recipe_class() for key, value in ENTRIES.items()}
    raise AttributeError(f"module 'tasks' has no attribute {name!r}")
