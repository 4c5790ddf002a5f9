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


def _help(args: list[str]) -> str:
    """What `polyvlm ARGS --help` prints (the parser's own list of the flags it accepts)."""
    import contextlib
    import io

    from polyvlm.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            main([*args, "--help"])
        except SystemExit:
            pass
    return out.getvalue()


def _readme_invocations(readme: str) -> list[tuple[str, list[str]]]:
    """Every `polyvlm COMMAND ...` the README shows (code blocks and inline code, `\\` continuations joined):
    (the line as shown, its words after `polyvlm`), comments and shell operators cut off."""
    text = re.sub(r"\\\n\s*", " ", readme)
    found = []
    for m in re.finditer(r"(?<![\w/.-])polyvlm ([a-z][a-z-]*)([^\n`]*)", text):
        shown = m.group(0)
        rest = re.split(r"\s#|&&|\|\||[|;]", m.group(2))[0]
        found.append((shown, [m.group(1), *rest.split()]))
    return found


def test_readme_flags_are_accepted_by_their_command(repo_root):
    """Each flag the README passes to a command is one that command's parser lists (`polyvlm data` verbs
    have their own parsers), so no example fails with `unrecognized arguments`."""
    from polyvlm.cli import COMMANDS

    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    helps: dict[tuple[str, ...], str] = {}
    checked, bad = 0, []
    for shown, words in _readme_invocations(readme):
        if words[0] not in COMMANDS:
            continue
        key = (words[0],)
        if len(words) > 1 and re.fullmatch(r"[a-z][a-z-]*", words[1]):
            sub = (words[0], words[1])
            if sub not in helps:
                helps[sub] = _help(list(sub))
            if helps[sub].startswith(f"usage: polyvlm {' '.join(sub)}"):
                key = sub
        if key not in helps:
            helps[key] = _help(list(key))
        accepted = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", helps[key]))
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", " ".join(words[1:])):
            checked += 1
            if flag not in accepted:
                bad.append(f"{flag} in: {shown.strip()}")
    assert checked > 30, checked  # the README shows many flags; the scan found them
    assert not bad, "\n".join(bad)


def test_version_flag_prints_the_installed_version(repo_root):
    import subprocess
    import sys
    import tomllib

    want = tomllib.loads((repo_root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    r = subprocess.run([sys.executable, "-m", "polyvlm", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == f"polyvlm {want}\n", r.stdout + r.stderr
