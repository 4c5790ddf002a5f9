"""polyvlm/registry.py: lookups, the unknown-name error (known names + nearest), lazy entries, and that every kind
(connector, encoder, template, synth stage, synth backend, data format, built-in tokenizer) is a `Registry`."""

from __future__ import annotations

import pytest

from polyvlm.registry import Registry, UnknownName


def test_lookup_and_unknown_name_lists_known_and_nearest():
    reg: Registry = Registry("widget")

    @reg.register("sprocket")
    class Sprocket:
        pass

    reg.register("gear")(len)
    assert reg.get("sprocket") is Sprocket and reg.build("gear", "abc") == 3
    assert reg.names() == ["gear", "sprocket"] and "gear" in reg and "cog" not in reg and len(reg) == 2
    with pytest.raises(UnknownName) as e:
        reg.get("sprockt")
    assert str(e.value) == "unknown widget 'sprockt' (did you mean 'sprocket'?) (known: gear, sprocket)"
    assert isinstance(e.value, KeyError) and isinstance(e.value, ValueError)  # callers catching either keep working
    with pytest.raises(UnknownName, match=r"^unknown widget 'zzz' \(known: gear, sprocket\)$"):
        reg.get("zzz")  # nothing close: no suggestion
    with pytest.raises(ValueError, match="widget 'gear' is already registered"):
        reg.register("gear")(len)


def test_lazy_entry_imports_on_first_get_and_stays_lazy_when_the_import_fails():
    reg: Registry = Registry("thing")
    reg.register_lazy("dumps", "json:dumps")
    reg.register_lazy("missing", "polyvlm_no_such_module:x")
    assert reg.names() == ["dumps", "missing"]
    import json

    assert reg.get("dumps") is json.dumps
    with pytest.raises(ImportError):
        reg.get("missing")
    assert "missing" in reg
    with pytest.raises(ValueError, match="already registered"):
        reg.register_lazy("dumps", "json:loads")


def test_every_kind_is_a_registry():
    from polyvlm.data.formats import FORMATS
    from polyvlm.models.connectors import CONNECTORS
    from polyvlm.models.encoders import ENCODERS
    from polyvlm.models.factory import BUILTIN_TOKENIZERS
    from polyvlm.models.templates import TEMPLATES
    from polyvlm.synth.backends import BACKENDS
    from polyvlm.synth.stages import STAGES

    for reg in (CONNECTORS, ENCODERS, TEMPLATES, STAGES, BACKENDS, FORMATS, BUILTIN_TOKENIZERS):
        assert isinstance(reg, Registry) and reg.names()
    assert {"linear", "mlp2x_gelu", "moe", "pool1"} <= set(CONNECTORS.names())
    assert {"clip_vision_model", "siglip_vision_model", "whisper"} <= set(ENCODERS.names())
    assert {"openai", "transformers", "vllm"} <= set(BACKENDS.names())
    assert {"categorize", "translate", "judge"} <= set(STAGES.names())
    assert BUILTIN_TOKENIZERS.names() == ["builtin:tiny", "builtin:tiny-av", "builtin:tiny-pandagpt"]
    with pytest.raises(ValueError, match=r"unknown built-in tokenizer 'builtin:tiny-v' \(did you mean 'builtin:tiny-av'"):
        BUILTIN_TOKENIZERS.get("builtin:tiny-v")


def test_readme_registry_table_names_real_registries():
    """Each row of the README's architecture table names registries that exist where it says."""
    import importlib
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| [^|]+ \| (`[A-Z_]+`(?:, `[A-Z_]+`)*) \| (`[^|]+`) \|$", readme, re.M)
    assert len(rows) >= 8
    for names, files in rows:
        names, files = re.findall(r"`([A-Z_]+)`", names), re.findall(r"`([^`]+)`", files)
        for i, name in enumerate(names):
            module = files[min(i, len(files) - 1)].removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            assert isinstance(getattr(importlib.import_module(module), name), Registry), (module, name)
