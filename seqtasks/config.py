"""Typed recipe configs: dataclasses with defaults, ``key=value`` overrides, validation.

Every recipe declares one dataclass that subclasses :class:`TrainConfig`. Each
field carries its help text and constraints in ``dataclasses.field(metadata=...)``:

- ``help``: one sentence shown by ``python cli.py recipes NAME``;
- ``choices``: the allowed values (strings);
- ``min`` / ``max``: inclusive numeric bounds; ``above``: exclusive lower bound.

:func:`apply_overrides` parses ``--set key=value`` strings with the field's
type, so ``--set dropout=0.2`` becomes a float and ``--set dropout=high`` is a
:class:`~seqtasks.errors.ConfigError` naming the field and what was expected.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, TypeVar

from seqtasks.errors import ConfigError

C = TypeVar("C", bound="TrainConfig")


def option(default: Any, help: str, **constraints: Any) -> Any:
    """A dataclass field with help text and constraints (``choices``, ``min``, ``max``);
    ``data=True`` marks a field that describes the training data rather than the model;
    ``absent=V`` on a field added after runs were recorded without it: the value that does
    what seqtasks did before the field existed, so those runs resume
    (:meth:`TrainConfig.absent_values`)."""
    return dataclasses.field(default=default, metadata={"help": help, **constraints})


def retune(group: type, name: str, default: Any, **changes: Any) -> Any:
    """Field ``name`` of the config class ``group`` with another default (and, in
    ``changes``, other metadata such as ``help`` or ``min``): how a recipe's config
    overrides a field of a group it composes (see :mod:`seqtasks.config_groups`).

    Raises:
        KeyError: if ``group`` has no field ``name``.
    """
    base = group.__dataclass_fields__[name]
    return dataclasses.field(default=default, metadata={**base.metadata, **changes})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Fields shared by every recipe: data, optimisation, splitting, outputs.

    Recipes subclass this and add model and data fields. Instances are
    immutable; use :func:`apply_overrides` or ``dataclasses.replace``.
    """

    data: str = option("", "Training data: a file, a folder, or tfds:<name>.", data=True)
    model: str = option("", "Model architecture (see `python cli.py recipes`).")
    epochs: int = option(10, "Maximum number of epochs (early stopping may end sooner).", min=1)
    batch_size: int = option(64, "Examples per training batch.", min=1)
    learning_rate: float = option(1e-3, "Adam learning rate.", above=0.0)
    clipnorm: float = option(
        1.0, "Clip each gradient to this L2 norm (0 disables clipping).", min=0.0
    )
    reduce_lr_factor: float = option(
        0.3,
        "Multiply the learning rate by this after an epoch without a better validation loss (1 = off).",
        min=0.01,
        max=1.0,
    )
    patience: int = option(
        2, "Early stopping: epochs without a better validation loss before stopping.", min=0
    )
    validation_split: float = option(
        0.1, "Share of the training data held out (seeded) for validation.", min=0.01, max=0.5
    )
    max_examples: int | None = option(
        None,
        "Use only the first N training examples (quick runs); None uses all.",
        min=1,
        data=True,
    )
    seed: int = option(
        1337, "Seed for data order, the validation split and initialisation.", min=0, max=2**32 - 1
    )
    mixed_precision: bool = option(
        False,
        "Train with Keras' mixed_float16 policy (float16 math, float32 weights and outputs; "
        "for GPUs, slower on CPU).",
    )
    jit_compile: str = option(
        "false",
        "Compile training steps with XLA: false (default: slower on CPU, see bench/README.md), "
        "true (also turns op determinism off), or auto (Keras' choice; never XLA under op "
        "determinism). Each padded length (bucket) is compiled separately.",
        choices=("auto", "true", "false"),
    )
    average_last: int = option(
        0,
        "Checkpoint averaging: export the mean of the weights of the N epochs ending at the "
        "best one by validation loss (Vaswani et al. 2017, sec. 6.1; OpenNMT, fairseq). "
        "0 or 1 exports the best epoch's weights.",
        min=0,
    )
    export_dir: str = option("", "Where versions are exported (<export_dir>/<version>/).")
    run_dir: str = option(
        "",
        "Run directory for config, logs, checkpoints and TensorBoard (default runs/<recipe>-<time>).",
    )

    def validate(self: C) -> C:
        """Check every field against its type and metadata; return ``self``.

        Raises:
            ConfigError: naming the first invalid field, its value and what was expected.
        """
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            _check_type(f.name, value, hints[f.name])
            if value is None:
                continue
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(
                    f"config field '{f.name}': expected a finite number; received: {value!r}"
                )
            choices = f.metadata.get("choices")
            if choices is not None and value not in choices:
                raise ConfigError(
                    f"config field '{f.name}': expected one of {', '.join(map(str, choices))}; "
                    f"received: {value!r}"
                )
            if "above" in f.metadata and not value > f.metadata["above"]:
                raise ConfigError(
                    f"config field '{f.name}': expected a value > {f.metadata['above']}; "
                    f"received: {value!r}"
                )
            if "min" in f.metadata and value < f.metadata["min"]:
                raise ConfigError(
                    f"config field '{f.name}': expected a value >= {f.metadata['min']}; "
                    f"received: {value!r}"
                )
            if "max" in f.metadata and value > f.metadata["max"]:
                raise ConfigError(
                    f"config field '{f.name}': expected a value <= {f.metadata['max']}; "
                    f"received: {value!r}"
                )
        self.check()
        return self

    def check(self) -> None:
        """Cross-field constraints; subclasses raise ``ConfigError`` naming the fields."""

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-compatible dict (every field, defaults included)."""
        return dataclasses.asdict(self)

    def absent_values(self) -> dict[str, Any]:
        """The fields declared with ``option(..., absent=V)``, each with ``V`` as JSON gives
        it back: the value a run recorded before the field existed used (not the field's
        default, which may have changed since). Other missing fields stay differences."""
        fields = dataclasses.fields(self)
        values = {f.name: f.metadata["absent"] for f in fields if "absent" in f.metadata}
        return json.loads(json.dumps(values, default=str))

    def to_json(self) -> str:
        """:meth:`to_dict` as indented, key-sorted JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls: type[C], values: dict[str, Any]) -> C:
        """Build and validate a config from a dict such as :meth:`to_dict` gives.

        Raises:
            ConfigError: for an unknown key or an invalid value.
        """
        _check_keys(cls, values)
        return cls(**values).validate()

    def describe(self) -> list[dict[str, Any]]:
        """One dict per field: name, type, value (this config's), help, choices/min/max."""
        hints = typing.get_type_hints(type(self))
        rows = []
        for f in dataclasses.fields(self):
            row = {
                "name": f.name,
                "type": _type_name(hints[f.name]),
                "default": getattr(self, f.name),
            }
            row.update(f.metadata)
            rows.append(row)
        return rows


def apply_overrides(config: C, overrides: dict[str, Any]) -> C:
    """Return a copy of ``config`` with ``overrides`` applied and validated.

    Args:
        config: the base config.
        overrides: field name to value. String values (from ``--set key=value``)
            are parsed with the field's type: ``"none"``/``"null"`` is ``None``
            for optional fields, booleans accept ``true/false/1/0/yes/no``.

    Raises:
        ConfigError: for an unknown field (listing the known ones) or a value
            that does not parse or validate.
    """
    _check_keys(type(config), overrides)
    hints = typing.get_type_hints(type(config))
    parsed = {
        key: parse_value(key, value, hints[key]) if isinstance(value, str) else value
        for key, value in overrides.items()
    }
    return dataclasses.replace(config, **parsed).validate()


def parse_assignments(
    pairs: typing.Iterable[str], flag: str = "--set", example: str = "dropout=0.2"
) -> dict[str, str]:
    """Parse ``["key=value", ...]`` (``--set`` options) into a dict.

    Args:
        pairs: the ``key=value`` strings.
        flag: the option they came from, for error messages.
        example: a valid pair, for error messages.

    Raises:
        ConfigError: for an item without ``=`` or with an empty key.
    """
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} {pair!r}: expected key=value, e.g. {flag} {example}")
        result[key.strip()] = value.strip()
    return result


def parse_value(name: str, text: str, hint: Any) -> Any:
    """Parse the string ``text`` as the type ``hint`` of field ``name``.

    Raises:
        ConfigError: if ``text`` is not a valid value of that type.
    """
    base, optional = _unwrap_optional(hint)
    if optional and text.lower() in ("none", "null", ""):
        return None
    try:
        if base is bool:
            lowered = text.lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError(text)
        if base is int:
            return int(text)
        if base is float:
            return float(text)
        if base is str:
            return text
    except ValueError:
        pass
    else:
        raise ConfigError(f"config field '{name}': unsupported type {hint!r}")
    raise ConfigError(f"config field '{name}': expected {_type_name(hint)}; received: {text!r}")


def _check_keys(cls: type, values: dict[str, Any]) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown config field {unknown[0]!r}; expected one of: {', '.join(sorted(known))}"
        )


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return hint, False


def _type_name(hint: Any) -> str:
    base, optional = _unwrap_optional(hint)
    name = getattr(base, "__name__", str(base))
    return f"{name} or none" if optional else name


def _check_type(name: str, value: Any, hint: Any) -> None:
    base, optional = _unwrap_optional(hint)
    if value is None:
        if optional:
            return
        raise ConfigError(f"config field '{name}': expected {_type_name(hint)}; received: None")
    ok = isinstance(value, base) and not (base is int and isinstance(value, bool))
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise ConfigError(
            f"config field '{name}': expected {_type_name(hint)}; received: {value!r}"
        )
