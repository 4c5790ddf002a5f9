"""MMMLU (openai/MMMLU: one CSV per locale, `test/mmlu_<LOCALE>.csv`, one config per locale) as
lm-evaluation-harness' `openai-mmmlu` tasks score it: log-likelihood of " A".." D" after the subject's description
and the question (`acc`, `acc_norm`) for checkpoints, a generated letter for endpoints."""

from __future__ import annotations

from typing import Any

from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.hub import load_split
from polyvlm.eval.tasks.published import register_published
from polyvlm.eval.tasks.text import XStoryCloze

# lm_eval/tasks/openai-mmmlu/languages.json: config name -> (display name in the description, language code)
LOCALES = {
    "AR_XY": ("Arabic", "ar"), "BN_BD": ("Bengali", "bn"), "DE_DE": ("German", "de"), "ES_LA": ("Spanish", "es"),
    "FR_FR": ("French", "fr"), "HI_IN": ("Hindi", "hi"), "ID_ID": ("Indonesian", "id"), "IT_IT": ("Italian", "it"),
    "JA_JP": ("Japanese", "ja"), "KO_KR": ("Korean", "ko"), "PT_BR": ("Brazilian Portuguese", "pt"),
    "SW_KE": ("Swahili", "sw"), "YO_NG": ("Yoruba", "yo"), "ZH_CN": ("Simplified Chinese", "zh"),
}
# lm_eval/tasks/openai-mmmlu/subjects.json: the 57 subjects (rows of any other subject belong to no task)
SUBJECTS = frozenset("""abstract_algebra anatomy astronomy business_ethics clinical_knowledge college_biology
college_chemistry college_computer_science college_mathematics college_medicine college_physics computer_security
conceptual_physics econometrics electrical_engineering elementary_mathematics formal_logic global_facts
high_school_biology high_school_chemistry high_school_computer_science high_school_european_history
high_school_geography high_school_government_and_politics high_school_macroeconomics high_school_mathematics
high_school_microeconomics high_school_physics high_school_psychology high_school_statistics high_school_us_history
high_school_world_history human_aging human_sexuality international_law jurisprudence logical_fallacies
machine_learning management marketing medical_genetics miscellaneous moral_disputes moral_scenarios nutrition
philosophy prehistory professional_accounting professional_law professional_medicine professional_psychology
public_relations security_studies sociology us_foreign_policy virology world_religions""".split())
LETTERS = "ABCD"


def subject_of(value: Any) -> str:
    """lm_eval/tasks/openai-mmmlu/default/utils.py `_normalize_subject_name`: some locales' Subject column holds a
    CSV name (`college_mathematics_test.csv_sw-KE.csv`); everything from `_test.csv` or `_test-` on is dropped."""
    if not isinstance(value, str):
        return value
    for marker in ("_test.csv", "_test-"):
        if marker in value:
            return value[: value.index(marker)]
    return value


@register_published
class MMMLU(XStoryCloze):
    """openai/MMMLU: context = the subject's description + `Question.strip()` + the four options + "Answer:",
    choices = the letters (after one space), so `acc_norm` (divided by one character) equals `acc`, as in lm-eval."""

    task_name, repo, kind = "mmmlu", "openai/MMMLU", "mcq"
    splits = {c: lang for c, (_, lang) in LOCALES.items()}  # configs
    cites = ("EleutherAI/lm-evaluation-harness lm_eval/tasks/openai-mmmlu/default/_default_template_yaml, "
             "_generate_configs.py (description), default/utils.py (subject filter)")

    def dataset(self, split: str) -> Any:
        return load_split(self.repo, "test", self.name, config=split)

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample | None:
        subject = subject_of(record["Subject"])
        if subject not in SUBJECTS:  # lm-eval's per-subject tasks never see this row
            return None
        answer = str(record["Answer"]).strip()
        if answer not in LETTERS:
            raise ValueError(f"Answer is {record['Answer']!r}, not one of A, B, C, D")
        options = {k: str(record[k]) for k in LETTERS}
        description = (f"The following are multiple choice questions (with answers) about "
                       f"{' '.join(subject.split('_'))} ({LOCALES[split][0]}).\n\n")
        body = str(record["Question"]).strip() + "".join(f"\n{k}. {v}" for k, v in options.items())
        context = f"{description}{body}\nAnswer:"
        prompt = f"{body}\nAnswer with the option's letter."
        return Sample(id=f"{split}/{row}", prompt=prompt, target=answer, language=language, options=options,
                      category=subject, extra={"context": context, "choices": list(LETTERS),
                                               "gold": LETTERS.index(answer)})
