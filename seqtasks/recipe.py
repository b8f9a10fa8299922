"""The recipe contract: one class per task, one training driver for all of them.

A recipe (a file in ``tasks/``) subclasses :class:`Recipe` and fills in the
task-specific steps; :func:`seqtasks.training.train` runs them in order::

    config   = recipe.make_config(**overrides)     # defaults + CLI overrides, validated
    data     = recipe.load_data(config)            # raw examples (Python objects)
    prepared = recipe.prepare(config, data, run)   # vocabularies, tf.data train/validation
    model    = recipe.build_model(config, prepared)
    recipe.compile_model(model, config, prepared)  # Adam + clipnorm + recipe loss/metrics
    model.fit(...)                                 # shared: callbacks, checkpoints, logs
    metrics  = recipe.evaluate(model, prepared, config)  # validation metrics
    recipe.export(model, prepared, config, ...)    # SavedModel version

Serving-side steps work on an exported version without the recipe's Python
model code: :meth:`Recipe.predict` and :meth:`Recipe.evaluate_export` call the
SavedModel's ``serving_default`` signature.

Many-to-one (sentiment), one-to-many (captioning) and many-to-many
(translation) recipes share this contract; what differs is data, model,
loss/metrics and the serving signature.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

from seqtasks.config import TrainConfig, apply_overrides

# Config fields about the machine a run uses rather than the model: fine-tuning
# starts them from the recipe's defaults (or its flags), not from the export's config.
MACHINE_FIELDS = ("mixed_precision", "jit_compile")


@dataclasses.dataclass
class Prepared:
    """What :meth:`Recipe.prepare` hands to the later steps.

    Attributes:
        train: ``tf.data.Dataset`` of ``(inputs, targets)`` training batches.
        validation: the same for validation batches.
        info: the recipe's own typed dataclass of what later steps need
            (vectorizer, tokenizers, the validation examples, ...).
        metadata: JSON-serialisable facts stored with the export (labels, data
            fingerprint, example counts, ...).
        built: objects built from the trained model by one step and reused by a
            later one (see :meth:`reuse`); never saved.
    """

    train: Any
    validation: Any
    info: dict[str, Any]
    metadata: dict[str, Any]
    built: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def reuse(self, name: str, model, build: Callable[[], Any]) -> Any:
        """``build()``, or what it returned for ``model`` (the same object) under ``name``
        before: e.g. a recipe's generator, whose decoding evaluation traces and its
        export then saves without tracing it again (a tiny Transformer translator's
        export: 11.2-11.4 s -> 8.4-9.4 s)."""
        cached = self.built.get(name)
        if cached is not None and cached[0] is model:
            return cached[1]
        value = build()
        self.built[name] = (model, value)
        return value


@dataclasses.dataclass
class FinetunePlan:
    """What :meth:`Recipe.plan_finetune` hands to :func:`seqtasks.training.finetune`.

    Attributes:
        model: the source model, loaded, with its head replaced and layers
            frozen as asked (compiled by the driver).
        prepare: ``prepare(run_dir) -> Prepared`` with the source's vocabulary.
        metadata: JSON-serialisable facts about the fine-tuning (source,
            labels, out-of-vocabulary share, ...), recorded in the run's
            ``config.json`` and the export metadata.
    """

    model: Any
    prepare: Callable[[str], Prepared]
    metadata: dict[str, Any]


class Recipe(abc.ABC):
    """Base class of task recipes. Subclasses set the class attributes and steps."""

    name: ClassVar[str]
    task_type: ClassVar[str]  # "many-to-one", "one-to-many" or "many-to-many"
    description: ClassVar[str]
    config_class: ClassVar[type[TrainConfig]]
    models: ClassVar[dict[str, str]]  # --model name -> one-line description
    evaluate_options: ClassVar[frozenset[str]]  # keyword options evaluate_export accepts
    # Optional CLI commands the recipe implements, each by a method of the same name with
    # underscores (``plot-attention``: ``plot_attention``); other recipes' exports are refused.
    extra_commands: ClassVar[frozenset[str]] = frozenset()

    def make_config(self, **overrides: Any) -> TrainConfig:
        """The recipe's defaults with ``overrides`` applied (strings are parsed).

        The names of ``overrides`` are recorded on the config (:func:`explicit_fields`):
        a default a recipe adapts to the run (e.g. a Transformer's warm-up) is kept as
        given when it was set explicitly.

        Raises:
            ConfigError: for an unknown field or an invalid value.
        """
        config = self.config_class(
            export_dir=f"saved_models/{self.name}",
        )
        return record_explicit(apply_overrides(config, overrides), overrides)

    @abc.abstractmethod
    def load_data(self, config: TrainConfig) -> Any:
        """Read the training examples named by ``config.data``."""

    def count_examples(self, data: Any) -> int:
        """The examples :meth:`load_data` read (``len(data)``; a recipe whose data is one
        stream counts what it splits, e.g. characters). Fewer than 2 is an error."""
        return len(data)

    @abc.abstractmethod
    def prepare(self, config: TrainConfig, data: Any, run_dir: str) -> Prepared:
        """Split, build vocabularies (written under ``run_dir``), make tf.data pipelines."""

    @abc.abstractmethod
    def build_model(self, config: TrainConfig, prepared: Prepared):
        """The Keras model trained by ``fit``."""

    @abc.abstractmethod
    def loss_and_metrics(self, config: TrainConfig) -> tuple[Any, list]:
        """The loss and metrics passed to ``model.compile``."""

    def selection(self, config: TrainConfig) -> tuple[str, str]:
        """``(monitor, mode)``: the epoch log key early stopping, the best checkpoint and
        checkpoint averaging select on, and whether lower (``"min"``) or higher (``"max"``)
        is better. The base selects on ``("val_loss", "min")``."""
        return "val_loss", "min"

    def epoch_callbacks(self, model, prepared: Prepared, config: TrainConfig) -> list:
        """Callbacks that add validation figures to each epoch's logs before early stopping
        reads them (e.g. decoded BLEU for :meth:`selection`); none in the base."""
        return []

    def uses_schedule(self, config: TrainConfig) -> bool:
        """Whether :meth:`compile_model` gives the optimizer a learning-rate schedule (then
        no ``ReduceLROnPlateau``: the schedule owns the rate). The base's Adam has a constant rate."""
        return False

    def compile_model(self, model, config: TrainConfig, prepared: Prepared | None = None) -> None:
        """Adam with the configured learning rate and gradient clipping (Pascanu et al. 2013).

        ``prepared`` (optional) lets a recipe fit its optimizer to the run, e.g. a
        warm-up capped to the number of steps (:mod:`seqtasks.generation_recipe`)."""
        import keras

        optimizer = keras.optimizers.Adam(
            learning_rate=config.learning_rate, clipnorm=config.clipnorm or None
        )
        loss, metrics = self.loss_and_metrics(config)
        model.compile(
            optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile(config)
        )

    @property
    def data_fields(self) -> tuple[str, ...]:
        """Config fields that describe the training data rather than the model (their
        metadata has ``data=True``, see :func:`seqtasks.config.option`): fine-tuning reads
        new data, so they start from the recipe's defaults (or the new flags)."""
        fields = dataclasses.fields(self.config_class)
        return tuple(f.name for f in fields if f.metadata.get("data"))

    def finetune_config(self, metadata: dict, **overrides: Any) -> TrainConfig:
        """The config an export was trained with, minus its data, with ``overrides`` applied.

        Dropped from the saved config: :attr:`data_fields`, ``run_dir``,
        ``export_dir`` and :data:`MACHINE_FIELDS` (how to run on this machine,
        not what the model is).

        Raises:
            ConfigError: for an unknown field or an invalid value.
        """
        saved = metadata.get("config") if isinstance(metadata.get("config"), dict) else {}
        fields = {f.name for f in dataclasses.fields(self.config_class)}
        keep = {
            key: value
            for key, value in saved.items()
            if key in fields
            and key not in self.data_fields
            and key not in ("run_dir", "export_dir")
            and key not in MACHINE_FIELDS
        }
        base = apply_overrides(self.make_config(), keep)
        return record_explicit(apply_overrides(base, overrides), overrides)

    def plan_finetune(
        self,
        config: TrainConfig,
        data: Any,
        version_dir: str,
        metadata: dict,
        *,
        new_head: bool = False,
        freeze: str = "none",
    ) -> FinetunePlan:
        """Load the export in ``version_dir`` and check ``data`` against it (see :class:`FinetunePlan`).

        Raises:
            UserError: here, for a recipe without fine-tuning (all three built-in ones have it).
        """
        from seqtasks.errors import UserError

        raise UserError(f"{version_dir}: a {self.name} model; this recipe cannot be fine-tuned")

    @staticmethod
    def finetune_plan(
        model, facts: dict, prepare: Callable[[str], Prepared], copies: dict[str, str]
    ) -> FinetunePlan:
        """The :class:`FinetunePlan` of a loaded ``model``: its ``prepare(run_dir)`` first
        copies the export's files named in ``copies`` (path in the export -> file name in
        the run dir, e.g. a vocabulary that :meth:`prepare` then reuses instead of learning
        one), then calls ``prepare(run_dir)`` and records ``facts`` (with its
        ``finetuned_from``) in the new export's metadata."""
        import os
        import shutil

        def run(run_dir: str) -> Prepared:
            for path, name in copies.items():
                shutil.copyfile(path, os.path.join(run_dir, name))
            prepared = prepare(run_dir)
            prepared.metadata.update({"finetuned_from": facts["finetuned_from"], "finetune": facts})
            return prepared

        return FinetunePlan(model=model, prepare=run, metadata=facts)

    @abc.abstractmethod
    def evaluate(self, model, prepared: Prepared, config: TrainConfig) -> dict[str, Any]:
        """Validation metrics of the trained in-memory model (``config``: the run's)."""

    @abc.abstractmethod
    def export(self, model, prepared: Prepared, config: TrainConfig, metadata: dict) -> str:
        """Write the next SavedModel version; return its folder."""

    @abc.abstractmethod
    def predict(self, version_dir: str, metadata: dict, inputs: list[str]) -> list[dict]:
        """Run the exported model on raw inputs; one JSON-able dict per input."""

    @abc.abstractmethod
    def evaluate_export(self, version_dir: str, metadata: dict, **data_args: Any) -> dict:
        """Score the exported model on a labelled dataset."""

    @abc.abstractmethod
    def format_prediction(self, result: dict) -> str:
        """One human-readable line for one :meth:`predict` result."""

    @abc.abstractmethod
    def format_report(self, report: dict) -> str:
        """Human-readable text of an :meth:`evaluate_export` report."""


_EXPLICIT = "_seqtasks_explicit_fields"


def record_explicit(config: TrainConfig, names) -> TrainConfig:
    """``config`` marked with the field ``names`` the user (or a preset) set explicitly.

    The mark is an attribute beside the dataclass fields, so it is no part of the
    config's equality, ``to_dict`` or ``config.json``; ``dataclasses.replace`` drops it.
    """
    object.__setattr__(config, _EXPLICIT, frozenset(names))
    return config


def explicit_fields(config: TrainConfig) -> frozenset[str]:
    """The fields recorded by :func:`record_explicit` (empty when the config was built
    some other way: then no field is known to be explicit)."""
    return getattr(config, _EXPLICIT, frozenset())


def jit_compile(config: TrainConfig) -> bool | str:
    """``Model.compile``'s ``jit_compile`` for the config field ``jit_compile``.

    ``"true"``/``"false"`` force XLA on/off; ``"auto"`` is Keras' choice: XLA
    on a GPU when every layer supports it (a cuDNN-eligible LSTM/GRU does
    not, so RNN models then run without XLA), never on a CPU-only machine.
    """
    return {"true": True, "false": False}.get(config.jit_compile, "auto")
