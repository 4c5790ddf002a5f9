"""EgoSchema's answered subset as lmms-eval defines it (EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/egoschema/ at
80391ce3, Dec 2024: egoschema_subset.yaml, _default_template_yaml, utils.py): lmms-lab/egoschema config `Subset` (the
500 questions whose answers EgoSchema publishes), split test, videos from the repo's zip chunks
(`videos_chunked_NN.zip`, members `videos/<video_idx>.mp4`). The full set (`egoschema`) has no public answers: lmms-eval
only writes a submission file for it, so it is not a polyvlm task."""

from __future__ import annotations

import random
import re
from typing import Any

from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.published import Official, register_published
from polyvlm.eval.tasks.videos import PublishedVideoTask

LETTERS = ["A", "B", "C", "D", "E"]  # get_multi_choice_info: exactly five options
POST_PROMPT = "\nAnswer with the option's letter from the given choices directly."  # egoschema_doc_to_text
_LABEL = re.compile(r"^\s*([A-E])\s*[.:)]\s*(.*)$", re.DOTALL)


def official_choice(response: str, options: list[str], rng: random.Random) -> tuple[str, bool]:
    """utils.py parse_multi_choice_response (not MMMU's: every form is collected, none stops the search): after
    stripping , . ! ? ; : ' from both ends and padding with spaces, the candidates are each "(X)" present, then each
    "X " (any word ending in a capital A-E before a space: "DNA test" is A), then each "X."; with none and more than 5
    words, each option whose whole stored text ("B. a man", label included) appears, case-insensitively. Several: the
    one whose last occurrence starts first. None: a letter drawn at random (True in the second slot). `options` are
    the `option` column's strings as stored."""
    index2ans = {k: o.strip() for k, o in zip(LETTERS, options)}
    for ch in [",", ".", "!", "?", ";", ":", "'"]:
        response = response.strip(ch)
    response = " " + response + " "
    index_ans, cands = True, []
    cands += [f"({c})" for c in LETTERS if f"({c})" in response]
    cands += [f"{c} " for c in LETTERS if f"{c} " in response]
    cands += [f"{c}." for c in LETTERS if f"{c}." in response]
    if not cands and len(response.split()) > 5:
        for k, ans in index2ans.items():
            if ans.lower() in response.lower():
                cands.append(k)
                index_ans = False
    if not cands:
        return rng.choice(LETTERS), True
    if len(cands) > 1:
        starts = [response.rfind(c) for c in cands] if index_ans else \
            [response.lower().rfind(index2ans[c].lower()) for c in cands]
        pick = cands[starts.index(min(starts))]  # np.argmin: the first of the smallest
    else:
        pick = cands[0]
    return pick.replace("(", "").replace(")", "").replace(".", "").strip(), False


@register_published
class EgoSchemaSubset(PublishedVideoTask):
    """lmms-eval's `egoschema_subset`: `question`, `option` (five "A. ..." strings), `answer` (the right option's
    0-based index), `video_idx` (the video's name). The prompt is the question, each option on its own line, and the
    letter instruction. Official: the letter read by parse_multi_choice_response (a random one when none can be
    read, seeded and counted) becomes 0-4 and is right when its str() equals str(answer); the `score` metric is the
    fraction right (shown here x 100)."""

    task_name, repo, config, kind = "egoschema_subset", "lmms-lab/egoschema", "Subset", "mcq"
    splits = {"test": "en"}
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/egoschema/ at 80391ce3 (egoschema_subset.yaml, "
             "_default_template_yaml, utils.py egoschema_doc_to_visual, egoschema_doc_to_text, get_multi_choice_info, "
             "parse_multi_choice_response, egoschema_process_results_generation, egoschema_aggregate_score)")
    lmms_cache_dir = "egoschema"  # dataset_kwargs.cache_dir: the zips are unzipped to $HF_HOME/egoschema
    max_new_tokens = 16
    default_metrics = ["accuracy"]
    parsed = True

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        stored = [str(o) for o in record["option"]]
        if len(stored) < 5:
            raise ValueError(f"{len(stored)} options; EgoSchema's reading takes five (A-E)")
        options = {}
        for i, line in enumerate(stored[:5]):
            m = _LABEL.match(line)
            options[LETTERS[i]] = (m.group(2) if m else line).strip()
        answer = str(record["answer"]).strip()
        if answer not in {"0", "1", "2", "3", "4"}:
            raise ValueError(f"answer {answer!r} is not an option index 0-4")
        question = str(record["question"]) + "".join("\n" + o for o in stored)
        mp4 = f"videos/{record['video_idx']}.mp4"
        return Sample(id=f"{split}/{row}", prompt=question + POST_PROMPT, target=LETTERS[int(answer)],
                      language=language, options=options,
                      extra={"question_idx": record.get("question_idx"), "video_idx": str(record["video_idx"]),
                             "option": stored, "answer": answer,
                             # egoschema_doc_to_visual: <cache>/videos/<video_idx>.mp4, then every "mp4" -> "MP4"
                             "video_candidates": [mp4, mp4.replace("mp4", "MP4")]})

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        per, read, drawn = [], [], []
        for s, p in zip(samples, predictions):
            letter, rand = official_choice(p.strip(), s.extra["option"], rng)  # api/task.py strips the reply first
            index = LETTERS.index(letter) if letter in LETTERS else -1  # pred_to_index.get(parsed_pred, -1)
            per.append(float(str(s.extra["answer"]) == str(index)))
            read.append(letter)
            drawn.append(rand)
        return Official("score", per, read, drawn)
