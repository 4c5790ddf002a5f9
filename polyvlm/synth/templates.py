"""Versioned prompt templates for synth stages: loading and rendering the YAML files in `polyvlm/synth/prompts/`.

A template file holds:

    name: judge
    version: "1"            # part of every result key (with a digest of the wording): bump it on changes
    system: "..."            # optional
    user: "... $question ..."   # `string.Template` syntax ($name); `$$` is a literal dollar
    variants:                # optional, e.g. per task category; each replaces `user`
      chart: "..."

Rendering with a missing variable raises a clear error naming the template file and the variable.
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PROMPT_DIR = Path(__file__).parent / "prompts"


class PromptError(ValueError):
    """A template file that is missing, malformed, or rendered without a variable it needs."""


@dataclass
class PromptTemplate:
    name: str
    version: str
    user: str
    system: str = ""
    variants: dict[str, str] = field(default_factory=dict)
    path: str = ""

    @property
    def version_id(self) -> str:
        """`name@version`, the string that enters result keys."""
        return f"{self.name}@{self.version}"

    @property
    def key_id(self) -> str:
        """`name@version#digest`: what enters result keys. The digest of the wording means an edited template
        whose version was not bumped still gets fresh results instead of silently reusing stale ones."""
        text = json.dumps([self.system, self.user, sorted(self.variants.items())], ensure_ascii=False)
        return f"{self.version_id}#{hashlib.sha256(text.encode()).hexdigest()[:12]}"

    def render(self, variant: str | None = None, **values: object) -> list[dict[str, str]]:
        """Chat messages: an optional system message and the user message with `values` substituted."""
        body = self.variants.get(variant, self.user) if variant else self.user
        msgs = []
        try:
            if self.system:
                msgs.append({"role": "system", "content": string.Template(self.system).substitute(values)})
            msgs.append({"role": "user", "content": string.Template(body).substitute(values)})
        except KeyError as e:
            raise PromptError(f"prompt {self.path or self.name}: no value for variable ${e.args[0]}") from None
        except ValueError as e:
            raise PromptError(f"prompt {self.path or self.name}: {e}") from None
        return msgs


def load_prompt(name_or_path: str) -> PromptTemplate:
    """Load a built-in template by stage name (`judge`) or any YAML file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROMPT_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise PromptError(f"prompt template {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise PromptError(f"prompt template {path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise PromptError(f"prompt template {path}: top level must be a mapping")
    for key in ("name", "version", "user"):
        if key not in data:
            raise PromptError(f"prompt template {path}: missing key '{key}'")
    unknown = set(data) - {"name", "version", "user", "system", "variants"}
    if unknown:
        raise PromptError(f"prompt template {path}: unknown key(s) {sorted(unknown)}")
    variants = data.get("variants") or {}
    if not isinstance(variants, dict) or not all(isinstance(v, str) for v in variants.values()):
        raise PromptError(f"prompt template {path}: 'variants' must map names to strings")
    return PromptTemplate(
        name=str(data["name"]), version=str(data["version"]), user=str(data["user"]),
        system=str(data.get("system") or ""), variants={str(k): v for k, v in variants.items()}, path=str(path),
    )
