"""The README: short, its set-up commands in step with CI, and every link resolving."""

from __future__ import annotations

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read(path: str) -> str:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def _setup_commands() -> list[str]:
    readme = _read("README.md")
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", setup, re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_the_readme_is_short_and_starts_with_two_set_up_commands():
    readme = _read("README.md")
    assert len(readme.splitlines()) < 250
    assert readme.index("## Set-up") < readme.index("## What next")
    install_and_run, tests = _setup_commands()
    assert install_and_run.startswith("python -m pip install -r requirements.txt && ")
    assert "python cli.py train " in install_and_run and "../shared/data/" in install_and_run
    assert "python cli.py predict " in install_and_run  # the user sees a real prediction
    # The README's test command is exactly the one .ci/run runs.
    ci = [line.strip() for line in _read(".ci/run").splitlines() if "pytest" in line]
    assert ci == [tests]


def test_every_relative_link_in_the_readme_and_docs_resolves():
    pages = ["README.md"] + [
        os.path.join("docs", name)
        for name in os.listdir(os.path.join(ROOT, "docs"))
        if name.endswith(".md")
    ]
    checked = 0
    for page in pages:
        text = _read(page)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            base = os.path.dirname(os.path.join(ROOT, page))
            resolved = (
                os.path.normpath(os.path.join(base, path)) if path else os.path.join(ROOT, page)
            )
            assert os.path.exists(resolved), f"{page}: link to {target} does not resolve"
            if anchor and resolved.endswith(".md"):
                with open(resolved, encoding="utf-8") as f:
                    headings = [
                        re.sub(r"[^\w\- ]", "", h.strip("# ").lower()).replace(" ", "-")
                        for h in f.read().splitlines()
                        if h.startswith("#")
                    ]
                assert anchor in headings, f"{page}: no heading for #{anchor} in {path or page}"
            checked += 1
    assert checked > 20
