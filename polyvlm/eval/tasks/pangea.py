"""PangeaBench's multimodal tasks as neulab/Pangea's lmms-eval tasks define them (evaluation/lmms-eval/lmms_eval/
tasks/{xgqa,marvl,maxm,xm100,cvqa,m3exam,xmmmu}): repos, splits, prompts, generation lengths and official scoring."""

from __future__ import annotations

import ast
import math
import random
import re
from typing import Any

from polyvlm.eval.extract import Extraction, english_fallback, extract_choice, extract_yes_no
from polyvlm.eval.metrics import official as off
from polyvlm.eval.metrics.caption import cider_d_scores
from polyvlm.eval.tasks.base import Sample, TaskError
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

PANGEA = "neulab/Pangea evaluation/lmms-eval/lmms_eval/tasks/"


def _first_line(prediction: str) -> str:
    lines = [ln for ln in prediction.strip().splitlines() if ln.strip()]
    return lines[0].strip() if lines else ""


@register_published
class XGQA(PublishedTask):
    task_name, repo, kind = "xgqa", "neulab/PangeaBench-xgqa", "vqa"
    splits = {s: s for s in ("en", "bn", "de", "id", "ko", "pt", "ru", "zh")}
    cites = PANGEA + "xgqa/ (xgqa_<lang>.yaml, utils.py)"
    default_metrics = ["vqa_accuracy"]

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        # English questions ask for "a single word or phrase"; the others add "in English" (answers are English)
        post = "Answer the question using a single word or phrase" + ("." if split == "en" else " in English.")
        return Sample(id=f"{split}/{row}", prompt=f"{record['question'].strip()} {post}", target=[record["answer"]],
                      language=language)

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return Extraction(_first_line(prediction), "first_line")

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        per = [float(off.xgqa_correct(p, s.target[0])) for s, p in zip(samples, predictions)]
        return Official("exact_match", per, [p.strip().lower() for p in predictions])


@register_published
class MaRVL(PublishedTask):
    task_name, repo, kind = "marvl", "neulab/PangeaBench-marvl", "yesno"
    splits = {"en": "en", "id": "id", "sw": "sw", "ta": "ta", "tr": "tr", "zh": "zh"}  # en: the nlvr2 task
    cites = PANGEA + "marvl/ (marvl_<lang>.yaml, nlvr2.yaml, utils.py)"
    default_metrics = ["accuracy"]
    parsed = True

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        turns = record["conversations"]
        prompt = turns[0]["value"].replace("<image>\n", "").strip() + ". Answer with the option directly."
        answer = str(turns[1])  # the scorer looks for "true"/"false" in the printed answer turn, case-sensitive
        if "true" not in answer and "false" not in answer:
            raise TaskError(f"{where} id={record.get('id')}: the answer turn {turns[1]!r} says neither true nor false")
        return Sample(id=f"{split}/{row}", prompt=prompt, target="yes" if "true" in answer else "no",
                      language=language, extra={"id": record.get("id")})

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        got = extract_yes_no(prediction, sample.language)
        if got.answer is None:  # the prompt asks for the option: "True" / "False" in the model's words
            low = prediction.strip().lower()
            if low.startswith("true") or low.startswith("false"):
                return Extraction("yes" if low.startswith("true") else "no", "true_false")
        return got

    def english_fallback(self, languages: list[str | None]) -> dict[str, list[str]]:
        return {"yes_no": english_fallback(languages, "yes_no")}

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        targets = ["true" if s.target == "yes" else "false" for s in samples]
        per = [float(off.marvl_correct(p, t)) for p, t in zip(predictions, targets)]
        return Official("exact_match", per, [off.marvl_reading(p) for p in predictions])


_MAXM_LANG = {"en": "English", "fr": "French", "hi": "Hindi", "iw": "Hebrew", "ro": "Romanian", "th": "Thai",
              "zh": "Chinese"}


@register_published
class MaXM(PublishedTask):
    task_name, repo, kind = "maxm", "neulab/PangeaBench-maxm", "vqa"
    splits = {"en": "en", "fr": "fr", "hi": "hi", "iw": "he", "ro": "ro", "th": "th", "zh": "zh"}
    cites = PANGEA + "maxm/ (maxm_<lang>.yaml default prompt, utils.py exact_match_with_multiple_references)"
    max_new_tokens = 64
    default_metrics = ["exact_match"]
    open_ended = True  # answers are asked for in the split's language (one word: mostly too short to identify)

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        prompt = (f"Given the image and the question, provide a concise answer. {record['question'].strip()}"
                  f"\nAnswer the question using a single word or phrase in {_MAXM_LANG[split]}.")
        answers = record["answers"]
        if not isinstance(answers, list) or not answers:
            raise TaskError(f"{where}: 'answers' must be a non-empty list, not {answers!r}")
        return Sample(id=f"{split}/{row}", prompt=prompt, target=[str(a) for a in answers], language=language,
                      extra={"image_id": record.get("image_id")})

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return Extraction(_first_line(prediction), "first_line")

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        per = [float(off.maxm_exact(p, s.target)) for s, p in zip(samples, predictions)]
        return Official("exact_match", per, list(predictions))


_XM100_LANG = {
    "ar": "Arabic", "bn": "Bengali", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "",
    "es": "Spanish", "fa": "Persian", "fi": "Finnish", "fil": "Filipino", "fr": "French", "he": "Hebrew",
    "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "ko": "Korean", "mi": "Maori", "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese",
    "quz": "Quechua", "ro": "Romanian", "ru": "Russian", "sv": "Swedish", "sw": "Swahili", "te": "Telugu",
    "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese",
}


@register_published
class XM100(PublishedTask):
    task_name, repo, kind = "xm100", "neulab/PangeaBench-xm100", "caption"
    splits = {s: s for s in _XM100_LANG}
    cites = PANGEA + "xm100/ (xm100_<lang>.yaml, utils.py: pycocoevalcap PTBTokenizer + Cider per language)"
    max_new_tokens = 128
    default_metrics = ["cider_d"]
    open_ended = True  # captions are asked for in the split's language: the results give the rate answered so

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        name = _XM100_LANG[split]
        prompt = "Provide a one-sentence caption for the provided image" + (f" in {name}." if name else ".")
        caption = record["caption"]
        refs = caption if isinstance(caption, list) else [caption]
        return Sample(id=f"{split}/{row}", prompt=prompt, target=[str(c) for c in refs], language=language,
                      extra={"image_id": record.get("image_id")})

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        per = self._cider(samples, predictions)
        return Official("CIDEr", per, [" ".join(off.ptb_tokenize(p)) for p in predictions])

    @staticmethod
    def _cider(samples: list[Sample], predictions: list[str]) -> list[float]:
        return cider_d_scores([off.ptb_tokenize(p) for p in predictions],
                              [[off.ptb_tokenize(r) for r in s.references()] for s in samples])

    def official_corpus(self, samples: list[Sample], predictions: list[str], per_sample: list[float]) -> float:
        """Each language is its own lmms-eval task (IDF over that language's captions); several languages: the
        mean of their scores. Reported x100 (the scorer prints CIDEr on its 0-10 scale)."""
        by_lang: dict[str, list[int]] = {}
        for i, s in enumerate(samples):
            by_lang.setdefault(s.language or "", []).append(i)
        if not samples:
            return math.nan
        scores = [100.0 * sum(per) / len(per) for idx in by_lang.values()
                  for per in [self._cider([samples[i] for i in idx], [predictions[i] for i in idx])]]
        return sum(scores) / len(scores)


class _LetterTask(PublishedTask):
    """Multiple choice scored by a letter: robust reading with `extract_choice`, official reading per task."""

    kind = "mcq"
    default_metrics = ["accuracy"]
    parsed = True

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return extract_choice(prediction, sample.options)

    def english_fallback(self, languages: list[str | None]) -> dict[str, list[str]]:
        return {"answer_phrases": english_fallback(languages, "phrases")}  # prompts: the official ones


_CVQA_CODES = {
    "Amharic": "am", "Bengali": "bn", "Breton": "br", "Bulgarian": "bg", "Chinese": "zh", "Egyptian Arabic": "arz",
    "Filipino": "fil", "French": "fr", "Hindi": "hi", "Igbo": "ig", "Indonesian": "id", "Irish": "ga",
    "Japanese": "ja", "Javanese": "jv", "Kinyarwanda": "rw", "Korean": "ko", "Malay": "ms", "Marathi": "mr",
    "Minangkabau": "min", "Mongolian": "mn", "Norwegian": "no", "Oromo": "om", "Portuguese": "pt",
    "Romanian": "ro", "Russian": "ru", "Sinhala": "si", "Spanish": "es", "Sundanese": "su", "Swahili": "sw",
    "Tamil": "ta", "Telugu": "te", "Urdu": "ur", "Arabic": "ar", "Bengali ": "bn", "English": "en",
}


@register_published
class CVQA(_LetterTask):
    """afaji/cvqa: one `test` split; every row is asked twice, in its own language and with the English
    translation (`Translated Question`/`Options`, lmms-eval's cvqa_translated) which gives PangeaBench's `en`."""

    task_name, repo = "cvqa", "afaji/cvqa"
    splits = {"test": "mul"}
    cites = PANGEA + "cvqa/ (cvqa.yaml, cvqa_translated.yaml, utils.py parse_multi_choice_response)"

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {**super().describe(), "languages": sorted(set(_CVQA_CODES.values()))}

    def load(self) -> list[Sample]:
        out = []
        for s in super().load():
            en = Sample(id=s.id + "/en", prompt=s.extra.pop("en_prompt"), images=s.images, target=s.target,
                        language="en", category=s.category, options=s.extra.pop("en_options"),
                        extra=dict(s.extra, translated=True), source=s.source)
            out += [s, en]
        return out

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        subset = record.get("Subset")
        lang, country = (ast.literal_eval(subset) if isinstance(subset, str) and subset.startswith("(")
                         else (str(subset), ""))
        code = _CVQA_CODES.get(lang, lang.lower())

        def prompt(question: str, options: list[str]) -> tuple[str, dict[str, str]]:
            letters = [chr(65 + i) for i in range(len(options))]
            listing = "\n".join(f"{k}. {v}" for k, v in zip(letters, options))
            return (f"Question: {question} \n\n Options: {listing} \n\n Answer with the option's letter from the "
                    "given choices directly."), dict(zip(letters, options))

        text, options = prompt(record["Question"], list(record["Options"]))
        en_text, en_options = prompt(record["Translated Question"], list(record["Translated Options"]))
        label = record["Label"]
        target = chr(65 + int(label)) if label is not None and int(label) >= 0 else None  # hidden test labels: -1
        return Sample(id=f"{split}/{row}", prompt=text, target=target, language=code, options=options,
                      category=f"{lang}-{country}" if country else lang,
                      extra={"ID": record.get("ID"), "en_prompt": en_text, "en_options": en_options})

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [off.lmms_choice(p, list(s.options.values()), rng) for s, p in zip(samples, predictions)]
        per = [math.nan if s.target is None else float(r[0] == s.target) for s, r in zip(samples, read)]
        return Official("accuracy", per, [r[0] for r in read], [r[1] for r in read])


_M3EXAM = {"english": "en", "chinese": "zh", "thai": "th", "vietnamese": "vi", "italian": "it", "afrikaans": "af",
           "portuguese": "pt"}
_M3EXAM_ANSWER = {"english": "Answer:", "chinese": "答案：", "vietnamese": "Câu trả lời:", "thai": "คำตอบ:",
                  "italian": "La risposta:", "afrikaans": "Antwoord:", "portuguese": "Responder:"}
_M3EXAM_SUBJECT = {
    "english": ("English", "Math", "Social Science", "Natural Science"),
    "chinese": ("语文", "数学", "社会科学", "自然科学"),
    "thai": ("ภาษาไทย", "คณิตศาสตร์", "สังคมศึกษา", "วิทยาศาสตร์"),
    "vietnamese": ("Tiếng Việt", "Toán", "Khoa học xã hội", "Khoa học tự nhiên"),
    "italian": ("Italiano", "Matematica", "Scienze sociali", "Scienze naturali"),
    "afrikaans": ("Afrikaans Huistaal", "Wiskunde", "Sosiale Wetenskappe", "Natuurwetenskap"),
    "portuguese": ("Linguagens", "Matemática", "Ciências Humanas", "Ciências da Natureza"),
}
_M3EXAM_HINT = {
    "english": "The following is a multiple choice question about {}. Please only respond with the letter (A, B, C, "
               "or D) corresponding to the correct answer, without any additional explanation.",
    "chinese": "以下是关于{}的单项选择题。 请仅给出正确选项对应的选项序号（A, B, C, 或 D） 而非其他细节。",
    "thai": "ต่อไปนี้เป็นคำถามแบบปรนัย วิชา{} โปรดตอบเพียงตัวอักษร (A, B, C หรือ D) ที่ตรงกับคำตอบที่ถูกต้อง "
            "โดยไม่ต้องมีคำอธิบายเพิ่มเติม",
    "vietnamese": "Sau đây là câu hỏi trắc nghiệm về {}. Vui lòng chỉ trả lời bằng chữ cái (A, B, C hoặc D) tương "
                  "ứng với câu trả lời đúng, không cần giải thích thêm.",
    "italian": "La seguente è una domanda a scelta multipla su {}. Si prega di rispondere solo con la lettera (A, B, "
               "C o D) corrispondente alla risposta corretta, senza alcuna spiegazione aggiuntiva.",
    "afrikaans": "Die volgende is 'n meervoudige keuse vraag oor {}. Antwoord asseblief slegs met die letter (A, B, "
                 "C of D) wat ooreenstem met die korrekte antwoord, sonder enige bykomende verduideliking.",
    "portuguese": "A seguir está uma questão de múltipla escolha sobre {}. Por favor, responda apenas com a letra "
                  "(A, B, C ou D) correspondente à resposta correta, sem qualquer explicação adicional.",
}
_SUBJECTS = ("language", "math", "social-science", "natural-science")
_IMAGE_REF = re.compile(r"\(image\)\[[^\]]+\]")


@register_published
class M3Exam(_LetterTask):
    task_name, repo = "m3exam", "neulab/PangeaBench-m3exam"
    splits = _M3EXAM
    cites = PANGEA + "m3exam/ (m3exam_<language>.yaml, utils.py construct_prompt, parse_multi_choice_response)"
    max_new_tokens = 32
    image_columns = tuple(f"image_{i}" for i in range(10))

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        lang = record["language"]
        if lang not in _M3EXAM_HINT:
            raise TaskError(f"{where}: unknown M3Exam language {lang!r} (known: {sorted(_M3EXAM_HINT)})")
        subject = _M3EXAM_SUBJECT[lang][_SUBJECTS.index(record["subject_category"])]
        raw_options = [str(o) for o in record["options"]]
        cleaned = [re.sub(r"^[\(（]?[A-Da-d\d][\)）\.\s]+\s*", "", o).strip() for o in raw_options]
        listed = [f"({chr(65 + i)}) {c}" for i, c in enumerate(cleaned)]
        question = _IMAGE_REF.sub("", _IMAGE_REF.sub("<image>", record["question_text"], count=1))
        options_text = "" if _IMAGE_REF.search(" ".join(listed)) else "\n".join(listed)
        background = record.get("background_description") or []
        bg = "\n" + "\n".join(background) if background else ""
        prompt = (f"{_M3EXAM_HINT[lang].format(subject)}\n\n{bg}\n{question}\n{options_text}\n"
                  f"{_M3EXAM_ANSWER[lang]}")
        gold = off.m3exam_gold(str(record["answer_text"]))
        options = {chr(65 + i): c for i, c in enumerate(cleaned)}
        return Sample(id=f"{split}/{row}", prompt=prompt, target=gold, language=language, options=options,
                      category=record["subject_category"], extra={"raw_options": raw_options})

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [off.lmms_choice(p, s.extra["raw_options"], rng) for s, p in zip(samples, predictions)]
        per = [float(r[0] == s.target) for s, r in zip(samples, read)]
        return Official("accuracy", per, [r[0] for r in read], [r[1] for r in read])


_MMMU_IMAGE = re.compile(r"<image (\d+)>")


@register_published
class XMMMU(_LetterTask):
    task_name, repo = "xmmmu", "neulab/PangeaBench-xmmmu"
    splits = {s: s for s in ("en", "ar", "fr", "hi", "id", "ja", "pt")}
    cites = PANGEA + "xmmmu/ (mmmu_<Language>_val.yaml, utils.py: MMMU-Benchmark/MMMU eval_utils rules)"
    image_columns = tuple(f"image_{i}" for i in range(1, 8))

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        question, qtype = record["question"], record["question_type"]
        options: dict[str, str] = {}
        if qtype == "multiple-choice":
            opts = off.mmmu_options(record["options"])
            options = {chr(65 + i): o for i, o in enumerate(opts)}
            listing = "\n".join(f"{k}. {v}" for k, v in options.items())
            prompt = f"{question}\n{listing}\nAnswer with the option letter from the given choices directly."
        else:
            prompt = f"{question}\nAnswer the question using a single word or phrase."
        visual = [f"image_{n}" for n in _MMMU_IMAGE.findall(prompt)]
        prompt = re.sub(r"<image [1-7]>", "<image>", prompt)
        sid = str(record["id"])
        return Sample(id=f"{split}/{row}", prompt=prompt, target=off.mmmu_answer(record["answer"]), language=language,
                      options=options, category=_mmmu_subject(sid),
                      extra={"id": sid, "question_type": qtype, "visual": visual, "answer": str(record["answer"])})

    def images_of(self, record: dict[str, Any], columns: list[str], sample: Sample) -> list[str]:
        """The official doc_to_visual: one picture per <image n> token of the prompt, in order."""
        return [c for c in sample.extra["visual"] if record.get(c) is not None]

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        if sample.options:
            return extract_choice(prediction, sample.options)
        return Extraction(prediction.strip(), "open")  # scored by the MMMU open-answer reading below

    def sample_scores(self, samples: list[Sample], answers: list[str | None]) -> dict[str, list[float]]:
        out = []
        for s, a in zip(samples, answers):
            if s.options:
                gold = s.target if isinstance(s.target, list) else [s.target]
                out.append(float(a is not None and a in gold))
            else:
                out.append(float(a is not None and off.mmmu_open_correct(off.mmmu_open_reading(a), s.target)))
        return {"accuracy": out}

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        """mmmu_process_results hands evaluate_mmmu doc["answer"] as stored: a list literal ("['24/7', '3.429']")
        stays one string, so eval_multi_choice compares the letter with that text and eval_open looks for the whole
        text inside the reading (the robust score accepts each listed value). An unreadable letter is drawn with
        random.choice from the options (parse_multi_choice_response), seeded and counted."""
        per, answers, drawn = [], [], []
        for s, p in zip(samples, predictions):
            gold = s.extra["answer"]
            if s.options:
                letter, rand = off.mmmu_choice(p, list(s.options.values()), rng)
                per.append(float(letter == gold))
                answers.append(letter)
                drawn.append(rand)
            else:
                reading = off.mmmu_open_reading(p)
                per.append(float(off.mmmu_open_correct(reading, gold)))
                answers.append(reading)
                drawn.append(False)
        return Official("mmmu_acc", per, answers, drawn)


def _mmmu_subject(sample_id: str) -> str | None:
    """`validation_Art_Theory_12` -> `Art_Theory` (the subdomain the official aggregation groups by)."""
    head = sample_id.split("_")[0]
    m = re.match(rf"^{re.escape(head)}_(.+?)_\d+$", sample_id)
    return m.group(1) if m else None
