"""VQA accuracy with the official answer normalisation (VQA v2 / EvalAI): min(#matches/3, 1), leave-one-out."""

from __future__ import annotations

import re

from polyvlm.eval.metrics import MetricResult, mean_result, register_metric

# Facts from the VQA evaluation tools (EvalAI variant): which characters count as punctuation, which
# number words become digits, which articles are dropped, and which apostrophe-less forms are restored.
_PUNCT = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
_COMMA_BETWEEN_DIGITS = re.compile(r"(\d)(,)(\d)")
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
_NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                 "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
_CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
    "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
    "let's": "let's", "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
    "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't",
    "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's", "thered": "there'd",
    "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're", "theres": "there's",
    "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've", "theyll": "they'll",
    "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've",
    "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
    "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's",
    "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've", "wholl": "who'll",
    "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're", "whys": "why's",
    "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd",
    "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're", "youve": "you've",
}


def process_punctuation(text: str) -> str:
    """Each punctuation mark is deleted when it touches a space (or the text has a digit,digit comma),
    otherwise replaced by a space; periods not followed by a digit are deleted."""
    out = text
    has_digit_comma = _COMMA_BETWEEN_DIGITS.search(text) is not None
    for p in _PUNCT:
        if (p + " " in text or " " + p in text) or has_digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out)


def process_digit_article(text: str) -> str:
    """Lower case, number words to digits, articles dropped, apostrophe-less contractions restored."""
    words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in _ARTICLES]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words)


def normalize_vqa(answer: str) -> str:
    answer = answer.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(answer))


def vqa_accuracy_one(prediction: str, answers: list[str]) -> float:
    """Accuracy of one prediction against the human answers: for each answer left out in turn,
    min(#other answers equal to the prediction / 3, 1), averaged. A single reference answer counts as if
    every annotator gave it (so the score is its normalised exact match)."""
    if not answers:
        raise ValueError("VQA accuracy needs at least one reference answer")
    pred = normalize_vqa(prediction)
    gts = [normalize_vqa(a) for a in answers]
    if len(gts) == 1:
        gts = gts * 10
    matches = sum(g == pred for g in gts)
    # leaving out a matching answer leaves matches-1 matches among the others; a non-matching one leaves all.
    total = matches * min(1.0, (matches - 1) / 3) + (len(gts) - matches) * min(1.0, matches / 3)
    return total / len(gts)


@register_metric("vqa_accuracy", help="VQA accuracy: min(#matches/3,1) averaged leave-one-out, official normalisation")
def vqa_accuracy(predictions: list[str], references: list[list[str]]) -> MetricResult:
    return mean_result([vqa_accuracy_one(p, refs) for p, refs in zip(predictions, references)])
