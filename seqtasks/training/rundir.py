"""Run directories: default names, finished or unfinished runs, what differs from an
earlier run, locking, the choice of the folder a run trains (or resumes) in, and the
data fingerprint a run records."""

from __future__ import annotations

import datetime
import json
import os

from seqtasks.config import TrainConfig
from seqtasks.errors import ConfigError, DataError
from seqtasks.fingerprint import fingerprint
from seqtasks.recipe import Recipe
from seqtasks.training.resume import RESUME_DIR


def default_run_dir(recipe_name: str) -> str:
    """``runs/<recipe>-<YYYYmmdd-HHMMSS>`` for the current local time (``-2``, ... if taken)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = base = os.path.join("runs", f"{recipe_name}-{stamp}")
    suffix = 1
    while os.path.exists(path):
        suffix += 1
        path = f"{base}-{suffix}"
    return path


def read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_unfinished(run_dir: str) -> bool:
    """Whether ``run_dir`` holds a run that started (``config.json``) but did not finish."""
    return os.path.isfile(os.path.join(run_dir, "config.json")) and not os.path.exists(
        os.path.join(run_dir, "metrics.json")
    )


def run_differences(
    run_dir: str,
    recipe_name: str,
    config: dict,
    data: dict | None = None,
    finetune: dict | None = None,
    absent: dict | None = None,
) -> list[str]:
    """What differs between the run in ``run_dir`` and this one, one ``field: there, here`` each.

    Compares the recipe, every config field but ``run_dir`` (a field the run's
    ``config.json`` lacks, one added to seqtasks since, counts as its entry in
    ``absent``, :meth:`~seqtasks.config.TrainConfig.absent_values`: a run started
    before such a field resumes) and, when ``data``
    (a fingerprint with the example count) is given, the data's path, size,
    hash and number of examples; for a fine-tuning run, every entry of
    ``finetune`` (source version, ``freeze``, ``new_head``) with the run's
    ``finetune`` record. Empty when the run can be resumed.
    """
    record = read_json(os.path.join(run_dir, "config.json"))
    if not isinstance(record, dict):
        return ["config.json: unreadable"]
    diffs = []
    if record.get("recipe") != recipe_name:
        diffs.append(f"recipe: {record.get('recipe')!r} there, {recipe_name!r} here")
    saved = record.get("config") if isinstance(record.get("config"), dict) else {}
    for key in sorted((set(saved) | set(config)) - {"run_dir"}):
        unrecorded = key not in saved and key in (absent or {})
        there = absent[key] if unrecorded else saved.get(key)
        if there != config.get(key):
            note = " (not recorded: the run predates the field)" if unrecorded else ""
            diffs.append(f"{key}: {there!r} there{note}, {config.get(key)!r} here")
    if data is not None:
        saved = record.get("data") if isinstance(record.get("data"), dict) else {}
        for key in ("path", "bytes", "sha256", "examples"):
            there, here = saved.get(key), data.get(key)
            if there != here:
                if key == "sha256":
                    there, here = str(there)[:12] + "…", str(here)[:12] + "…"
                diffs.append(f"data {key}: {there!r} there, {here!r} here")
    if finetune is not None:
        saved = record.get("finetune") if isinstance(record.get("finetune"), dict) else {}
        for key, here in finetune.items():
            if saved.get(key) != here:
                diffs.append(f"{key}: {saved.get(key)!r} there, {here!r} here")
    return diffs


def unfinished_runs(recipe_name: str, root: str = "runs") -> list[str]:
    """Unfinished runs of ``recipe_name`` under ``root`` (default run dirs), newest first."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    runs = [
        os.path.join(root, name)
        for name in names
        if name.startswith(f"{recipe_name}-") and is_unfinished(os.path.join(root, name))
    ]

    def last_written(run_dir):
        state = os.path.join(run_dir, RESUME_DIR, "state.json")
        path = state if os.path.exists(state) else os.path.join(run_dir, "config.json")
        return os.path.getmtime(path)

    return sorted(runs, key=last_written, reverse=True)


def lock_run(run_dir: str):
    """An exclusive lock on ``run_dir`` (``<run_dir>/.lock``) held until closed, or None if taken.

    The lock belongs to the open file: it goes when the process ends, even by ``kill -9``.
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): no protection against a second process
        return open(os.path.join(run_dir, ".lock"), "a")
    handle = open(os.path.join(run_dir, ".lock"), "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def mismatch_error(run_dir: str, diffs: list[str]) -> ConfigError:
    return ConfigError(
        f"config field 'run_dir': {run_dir} holds an unfinished run with other settings "
        f"({'; '.join(diffs)}); repeat them to resume it, or choose another --run-dir"
    )


def in_use_error(run_dir: str) -> ConfigError:
    return ConfigError(f"config field 'run_dir': {run_dir} is in use by another training process")


def check_run_dir(
    explicit: str, name: str, config_dict: dict, resume: bool, absent: dict | None = None
) -> None:
    """Before the data is read: an explicit run dir must be empty or an unfinished run like this.

    Raises:
        ConfigError: a finished run (or any run with ``resume`` off), or other settings.
    """
    if not explicit or not os.path.exists(os.path.join(explicit, "config.json")):
        return
    if not resume or not is_unfinished(explicit):
        raise ConfigError(
            f"config field 'run_dir': {explicit} already holds a run; choose another --run-dir"
        )
    diffs = run_differences(explicit, name, config_dict, absent=absent)
    if diffs:
        raise mismatch_error(explicit, diffs)


def choose_run_dir(
    explicit: str,
    name: str,
    config_dict: dict,
    data_fingerprint: dict,
    resume: bool,
    finetune: dict | None = None,
    absent: dict | None = None,
):
    """``(run_dir, lock, continuing)``: the explicit run dir (locked, if it holds a run
    like this one), else with ``resume`` the newest matching unfinished run under
    ``runs/``, else a new ``runs/<name>-<time>``.

    Raises:
        ConfigError: the explicit run's data or source differ, or another process holds it.
    """
    if explicit and os.path.exists(os.path.join(explicit, "config.json")):
        diffs = run_differences(explicit, name, config_dict, data_fingerprint, finetune, absent)
        if diffs:
            raise mismatch_error(explicit, diffs)
        lock = lock_run(explicit)
        if lock is None:
            raise in_use_error(explicit)
        return explicit, lock, True
    if not explicit and resume:
        for candidate in unfinished_runs(name):
            if not run_differences(
                candidate, name, config_dict, data_fingerprint, finetune, absent
            ):
                lock = lock_run(candidate)
                if lock is not None:
                    return candidate, lock, True
    return explicit or default_run_dir(name), None, False


def check_split_size(n: int, where: str) -> None:
    """Check that ``n`` examples leave at least one for training and one for validation.

    Raises:
        DataError: if they do not (too few examples).
    """
    if n < 2:
        raise DataError(
            f"{where}: {n} example(s); training needs at least 2 (one is held out for validation)"
        )


def load_data(recipe: Recipe, config: TrainConfig):
    """The recipe's data and its fingerprint (path, size, hash, examples, skipped bad rows)."""
    data = recipe.load_data(config)
    examples = recipe.count_examples(data)
    check_split_size(examples, config.data)
    data_fingerprint = {**fingerprint(config.data), "examples": examples}
    if getattr(data, "skipped_bad_rows", None) is not None:  # --on-bad-rows skip
        data_fingerprint["skipped_bad_rows"] = data.skipped_bad_rows
    return data, data_fingerprint
