"""The README opens with the two set-up commands, and the Makefile provides them."""

from __future__ import annotations

import re


def test_readme_commands_match_makefile(repo_root):
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    makefile = (repo_root / "Makefile").read_text(encoding="utf-8")
    head = readme[: readme.find("\n## ", readme.find("make test"))]
    assert "make demo" in head and "make test" in head
    targets = set(re.findall(r"^([a-z]+):", makefile, re.M))
    assert {"demo", "test"} <= targets
    ci = (repo_root / ".ci/run").read_text()
    assert "make test" in ci
    assert "quickstart" in makefile.split("demo:")[1].split("\n\n")[0]


def test_readme_polyvlm_commands_exist(repo_root):
    from polyvlm.cli import COMMANDS

    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    used = set(re.findall(r"^\s*(?:\$ )?polyvlm ([a-z-]+)", readme, re.M))
    assert used, "the README shows polyvlm commands"
    assert used <= set(COMMANDS), used - set(COMMANDS)
