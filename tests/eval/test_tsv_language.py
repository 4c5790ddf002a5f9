"""A VLMEvalKit TSV's language from its file name (`mmmb_zh.tsv`), and no language from a word that only
looks like a code (`hidden_mcq.tsv`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyvlm.eval.tasks.mcq import language_of_file


@pytest.mark.parametrize(("name", "lang"), [
    ("mmmb_zh.tsv", "zh"), ("bench_pt_BR.tsv", "pt-BR"), ("data_eng.tsv", "eng"), ("bench_yue.tsv", "yue"),
    ("hidden_mcq.tsv", None), ("mmbench_dev.tsv", None), ("circular.tsv", None),
])
def test_tsv_file_names_give_a_language_only_when_they_name_one(name: str, lang: str | None) -> None:
    assert language_of_file(Path(name), None) == lang
