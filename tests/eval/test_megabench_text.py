"""bleu, gleu_cn and nli_entailment against the reference (lmms_eval/tasks/megabench/metrics/scoring/
sacrebleu_bleu.py Bleu, gleu.py GLEUChinese, nli_entailment.py NliEntailment); nli_entailment on a tiny random
DeBERTa-v2 classifier saved to a temporary directory (no download), the reference module importing it through a
patched transformers.pipeline."""

from __future__ import annotations

import sys
from typing import Any
from unittest import mock

import pytest
from megabench_reference import reference

from polyvlm.eval.metrics.megabench import FIELD_METRICS, score_field
from polyvlm.eval.metrics.megabench import text as text_metrics

PAIRS: list[tuple[Any, Any]] = [
    ("the cat sat on the mat", "the cat sat on the mat"),
    ("the cat sat on the mat", "a cat was sitting on a mat"),
    ("The Cat sat on the mat.", "the cat sat on the mat"),
    ("a b c d e f", "a b c d e f g h"),
    ("", "the cat"),
    ("the cat", ""),
    ("", ""),
    ("  spaced   words  here ", "spaced words here"),
    (["the cat sat on the mat", "hello world again and again"], ["the cat sat on a mat", "hello world again"]),
    (("one two three four",), ("one two three four",)),
    (["x"], "x"),
    (None, "x"),
    (3, "3"),
    ("{'a': 1}", "{'a': 1}"),
    ("今天天气很好，我们去公园散步吧", "今天天气不错，我们去公园散步"),
    ("我爱北京天安门", "我爱北京天安门"),
    ("我爱北京天安门", "我喜欢上海"),
    ("naïve café résumé", "naive cafe resume"),
    ("one two three four five six", "six five four three two one"),
]


def ours(name: str, response: Any, answer: Any) -> Any:
    return score_field(FIELD_METRICS.get(name), response, answer)


def ref(module: str, cls: str, response: Any, answer: Any) -> Any:
    try:
        return getattr(reference(module), cls).match(response, answer)
    except Exception:  # noqa: BLE001 - MetricType.match's 0
        return 0


@pytest.mark.parametrize(("response", "answer"), PAIRS)
def test_bleu_matches_reference(response: Any, answer: Any) -> None:
    expected = ref("scoring.sacrebleu_bleu", "Bleu", response, answer)
    assert ours("bleu", response, answer) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(("response", "answer"), PAIRS)
def test_gleu_cn_matches_reference(response: Any, answer: Any) -> None:
    expected = ref("scoring.gleu", "GLEUChinese", response, answer)
    assert ours("gleu_cn", response, answer) == pytest.approx(expected, abs=1e-9)


def test_absolute() -> None:
    assert ours("bleu", "the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)
    assert ours("bleu", "a b", None) == 0
    assert ours("gleu_cn", "我爱北京天安门", "我爱北京天安门") == pytest.approx(1.0)
    assert ours("gleu_cn", "我爱北京", "你好") == 0
    # GLEU = min(precision, recall): swapping the sides keeps the score, so only the counts' roles differ
    a, b = "今天天气很好，我们去公园散步吧", "今天天气不错"
    assert ours("gleu_cn", a, b) == pytest.approx(ours("gleu_cn", b, a))


@pytest.fixture(scope="module")
def nli_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random DebertaV2ForSequenceClassification with MNLI's labels and a word-level tokenizer."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "dog", "a", "b'x'", "mat", "on", "ran"]
    model = tokenizers.models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]")
    tok = tokenizers.Tokenizer(model)
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                                cls_token="[CLS]", sep_token="[SEP]")
    config = transformers.DebertaV2Config(
        vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64, num_labels=3, id2label={0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"},
        label2id={"CONTRADICTION": 0, "NEUTRAL": 1, "ENTAILMENT": 2})
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("nli")
    transformers.DebertaV2ForSequenceClassification(config).eval().save_pretrained(out)
    fast.save_pretrained(out)
    return str(out)


NLI_PAIRS: list[tuple[Any, Any]] = [
    ("the cat sat", b"x"), ("the dog ran", b"x"), ("", b"x"), (" a ", b" x "),
    ("the cat sat", "the cat sat"),  # a string answer: 0 before any model (the official's inverted check)
    (None, b"x"), (3, b"x"), ("the cat", None), ("the cat", ["the cat"]), ("the cat", 5),
]


def test_nli_matches_reference(nli_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    monkeypatch.setenv(text_metrics.NLI_MODEL_ENV, nli_dir)
    text_metrics._nli_pipeline.cache_clear()
    local = transformers.pipeline("text-classification", model=nli_dir, device="cpu")
    sys.modules.pop("metrics.scoring.nli_entailment", None)
    with mock.patch("transformers.pipeline", return_value=local):
        ref_module = reference("scoring.nli_entailment")
    labels = set()
    for response, answer in NLI_PAIRS:
        expected = ref("scoring.nli_entailment", "NliEntailment", response, answer)
        assert ours("nli_entailment", response, answer) == expected, (response, answer)
    for response, _ in NLI_PAIRS[:4]:
        labels.add(ref_module.pipe(f"[CLS] x [SEP] {str(response).strip()} [SEP]")[0]["label"])
    assert labels <= {"ENTAILMENT", "NEUTRAL", "CONTRADICTION"}
    # the label rule itself, on a pipeline that always answers one label
    for label, score in (("ENTAILMENT", 1), ("NEUTRAL", 0), ("entailment", 0)):
        fake = mock.Mock(return_value=[{"label": label, "score": 0.9}])
        with mock.patch.object(text_metrics, "_nli_pipeline", return_value=fake):
            assert text_metrics.nli_entailment("the cat", b" x ") == score
            fake.assert_called_with("[CLS] b'x' [SEP] the cat [SEP]")
    text_metrics._nli_pipeline.cache_clear()


def test_nli_string_answer_needs_no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(text_metrics.NLI_MODEL_ENV, "/nonexistent/nli")
    text_metrics._nli_pipeline.cache_clear()
    assert text_metrics.nli_entailment("the cat sat", "the cat sat") == 0


def test_nli_missing_model_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv(text_metrics.NLI_MODEL_ENV, str(tmp_path / "missing"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    text_metrics._nli_pipeline.cache_clear()
    with pytest.raises(text_metrics.NliModelUnavailable, match=r"nli_entailment.*POLYVLM_NLI_MODEL"):
        ours("nli_entailment", "the cat", b"x")  # not turned into a 0 by score_field
    text_metrics._nli_pipeline.cache_clear()


# multi_ref_phrase: lmms_eval/tasks/megabench/metrics/scoring/multi_ref_phrase.py (MultipleReferencePhraseEval),
# which matches each reference with simple_str_match (scoring/simple_str_match.py, strings.py here)
MULTI_REF: list[tuple[Any, Any]] = [
    ("Paris", "['Paris', 'paris, france']"), ("paris france", "['Paris', 'Paris, France']"),
    ("Lyon", "['Paris', 'Marseille']"), ("new-york", "New York，NYC"), ("NYC", "New York，NYC"),
    ("B", "[A, B]"), ("(B) the second", "['B', 'C']"), ("3", "[1, 2, 3]"), ("3.0", "[3]"), (3, "[1, 3]"),
    ("", "[]"), ("", ""), ("x", "x"), ("x", "('x',)"), ("x", "{'x'}"), ("x", "[x"), (None, "None"),
    ("x", None), ("x", ["x"]), ("l'été", "[\"l'été\", 'summer']"), ("a.b", "[ab]"),
]


@pytest.mark.skipif("simple_str_match" not in FIELD_METRICS, reason="simple_str_match (strings.py) not landed yet")
@pytest.mark.parametrize(("response", "targets"), MULTI_REF)
def test_multi_ref_phrase_matches_reference(response: Any, targets: Any) -> None:
    expected = ref("scoring.multi_ref_phrase", "MultipleReferencePhraseEval", response, targets)
    assert ours("multi_ref_phrase", response, targets) == expected


@pytest.mark.skipif("simple_str_match" not in FIELD_METRICS, reason="simple_str_match (strings.py) not landed yet")
def test_multi_ref_phrase_absolute() -> None:
    assert ours("multi_ref_phrase", "New York", "['Paris', 'new york']") == 1
    assert ours("multi_ref_phrase", "Lyon", "['Paris', 'Marseille']") == 0
    assert ours("multi_ref_phrase", "NYC", "New York，NYC") == 1
