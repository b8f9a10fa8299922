"""Fine-tuning an export: :func:`finetune` checks the new data against the export, then
trains through the driver's :func:`~seqtasks.training.driver.train`-conventions (run
directory, resume, early stopping, export of the next version)."""

from __future__ import annotations

import json
import time

from seqtasks.config import TrainConfig
from seqtasks.io import check_output_dir
from seqtasks.recipe import Recipe
from seqtasks.training.driver import TrainResult, _train_locked
from seqtasks.training.environment import seed_everything
from seqtasks.training.rundir import check_run_dir, choose_run_dir, load_data


def finetune(
    recipe: Recipe,
    config: TrainConfig,
    version_dir: str,
    metadata: dict,
    *,
    new_head: bool = False,
    freeze: str = "none",
    verbose: int | None = None,
    callbacks: list | None = None,
    resume: bool = True,
) -> TrainResult:
    """Continue training the export in ``version_dir`` on ``config.data``; export the next version.

    The recipe's :meth:`~seqtasks.recipe.Recipe.plan_finetune` loads the
    export's model and vocabulary and checks the new data against them
    (labels, language pair, out-of-vocabulary share) before anything is
    written; training then follows :func:`train`'s conventions (seeded
    validation split, early stopping, checkpoints, run directory, metrics)
    and the new version lands in ``config.export_dir`` with
    ``finetuned_from`` in its metadata.

    Resume works as for :func:`train`: default run dirs are
    ``runs/<recipe>-finetune-<time>``, and an unfinished fine-tuning run
    with the same config, data, source version, ``freeze`` and ``new_head``
    is continued (``config.run_dir``'s, else the newest under ``runs/``)
    at the epoch after its last finished one; ``resume=False`` starts a
    fresh run (an explicit ``run_dir`` that holds a run is then refused).
    ``train`` never resumes a fine-tuning run, nor the other way round (the
    run's recipe is ``<recipe>-finetune``).

    Args:
        recipe: the export's recipe.
        config: the fine-tuning config (the export's, with the new data,
            epochs, learning rate, export and run dirs).
        version_dir, metadata: the source export version and its metadata.
        new_head: replace the classification head with a fresh one for the
            new data's labels (sentiment).
        freeze: ``encoder``, ``embeddings`` or ``none``: layers kept fixed.
        verbose, callbacks: as for :func:`train`.
        resume: False to start a fresh run even when a matching unfinished one exists.

    Raises:
        UserError: for bad data, labels the model does not know (without
            ``new_head``), another language pair, an export the recipe cannot
            fine-tune; a ``ConfigError`` for a run dir that holds a finished
            run, an unfinished run with other settings, or one in use.
    """
    config = config.validate()
    check_output_dir(config.export_dir, "export_dir")
    check_output_dir(config.run_dir or "runs", "run_dir")
    name = f"{recipe.name}-finetune"
    config_dict = json.loads(json.dumps(config.to_dict(), default=str))
    absent = config.absent_values()
    check_run_dir(config.run_dir, name, config_dict, resume, absent)
    seed_everything(config.seed, deterministic=config.jit_compile != "true")
    start = time.perf_counter()
    # Everything that can fail on bad data or labels happens before anything is written.
    data, data_fingerprint = load_data(recipe, config)
    plan = recipe.plan_finetune(
        config, data, version_dir, metadata, new_head=new_head, freeze=freeze
    )
    source = {
        "finetuned_from": plan.metadata["finetuned_from"],
        "freeze": plan.metadata["freeze"],
        "new_head": plan.metadata["new_head"],
    }
    run_dir, lock, continuing = choose_run_dir(
        config.run_dir, name, config_dict, data_fingerprint, resume, source, absent
    )
    return _train_locked(
        recipe,
        config,
        run_dir,
        data,
        data_fingerprint,
        lock=lock,
        continuing=continuing,
        verbose=verbose,
        callbacks=callbacks,
        start=start,
        prepare=plan.prepare,
        build_model=lambda prepared: plan.model,
        # Another recipe name, so `train` never resumes a fine-tuning run.
        record={"recipe": name, "finetune": plan.metadata},
    )
