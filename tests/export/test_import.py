"""hf-llava import: a tiny HF Llava built from configs gives the same logits in polyvlm; round trip; init_from."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from export_helpers import polyvlm_inputs, read_json, square_image, tensors_of

from polyvlm.config import ModelConfig
from polyvlm.models.export import export_hf_llava, hf_chat_template
from polyvlm.models.hf_import import HFImportError, import_hf_llava
from polyvlm.models.templates import get_template

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hf_llava_dir(tiny, tmp_path_factory):
    """A tiny Llava saved by transformers: CLIP (layer -1, strategy full) + tied-embedding Llama, llama3 template,
    CLIPImageProcessor (no padding)."""
    from transformers import CLIPImageProcessorPil, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    tok = copy.deepcopy(tiny[1].tokenizer)
    torch.manual_seed(1)
    config = LlavaConfig(
        vision_config={"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        text_config={"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 640, "tie_word_embeddings": True,
                     "max_position_embeddings": 256},
        image_token_index=tok.convert_tokens_to_ids("<image>"), image_seq_length=17, vision_feature_layer=-1,
        vision_feature_select_strategy="full", tie_word_embeddings=True,
    )
    model = LlavaForConditionalGeneration(config)
    out = tmp_path_factory.mktemp("hf") / "llava"
    model.save_pretrained(str(out))
    chat = hf_chat_template(get_template("llama3", tok.bos_token))
    tok.chat_template = chat
    ip = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                               image_mean=[0.5, 0.4, 0.3], image_std=[0.2, 0.25, 0.3])
    LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=8, vision_feature_select_strategy="full",
                   chat_template=chat, num_additional_image_tokens=1).save_pretrained(str(out))
    return out


def test_hf_built_llava_imports_with_same_logits(hf_llava_dir):
    from transformers import LlavaForConditionalGeneration

    model, processor = import_hf_llava(hf_llava_dir)
    assert processor.config.template == "llama3"  # recognised from the directory's chat template
    assert (model.vision.feature_layer, model.vision.select, model.vision.tokens_per_image) == (-1, "full", 17)
    assert processor.config.image_size == 32 and processor.config.image_mean == (0.5, 0.4, 0.3)
    assert model.llm.config.tie_word_embeddings and model.llm.lm_head.weight is model.llm.get_input_embeddings().weight
    hf = LlavaForConditionalGeneration.from_pretrained(str(hf_llava_dir)).eval()
    ids, pixels = polyvlm_inputs(processor, "How many dogs?", square_image(32))
    assert ids.shape[1] > 17
    with torch.no_grad():
        ours = model(ids, pixels=pixels).logits
        theirs = hf(input_ids=ids, pixel_values=pixels).logits
    assert (ours - theirs).abs().max().item() < 1e-4


def test_export_import_export_gives_identical_tensors(exported, tmp_path):
    model, processor = import_hf_llava(exported)
    again = export_hf_llava(model, processor, tmp_path / "again")
    a, b = tensors_of(exported), tensors_of(again)
    assert set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
    assert read_json(exported / "config.json") == read_json(again / "config.json")
    assert read_json(exported / "preprocessor_config.json") == read_json(again / "preprocessor_config.json")
    assert (exported / "chat_template.jinja").read_text() == (again / "chat_template.jinja").read_text()


def test_init_from_hf_llava_trains_saves_and_reloads(hf_llava_dir, tmp_path):
    """`model.init_from: hf-llava:PATH` through the factory, then a polyvlm checkpoint that reloads alone."""
    from polyvlm.config import Config
    from polyvlm.models import factory
    from polyvlm.models.checkpoint import load, save_checkpoint

    cfg = ModelConfig(init_from=f"hf-llava:{hf_llava_dir}", template="llama3", vision_feature_layer=-1,
                      vision_select="full", max_length=128)
    model, processor = factory.build(cfg)
    assert model.training and model.cfg is cfg and processor.config.max_length == 128
    ids, pixels = polyvlm_inputs(processor, "Count the cats.", square_image(32, seed=2))
    labels = ids.clone()
    labels[:, :-4] = -100
    out = model(ids, pixels=pixels, labels=labels)
    out.loss.backward()
    assert model.connector.linear_1.weight.grad is not None
    model.eval()
    with torch.no_grad():
        ref = model(ids, pixels=pixels).logits
    ckpt = save_checkpoint(model, processor, Config(model=cfg), tmp_path / "ckpt")
    back, _ = load(ckpt)
    with torch.no_grad():
        assert torch.allclose(back(ids, pixels=pixels).logits, ref, atol=1e-5)


def test_init_from_takes_the_checkpoints_vision_readout(hf_llava_dir, caplog):
    """The checkpoint's vision_feature_layer / vision_select (Llava's `vision_feature_select_strategy` "full":
    CLS kept) rule over a recipe written for a fresh build, with a logged note; a connector it lacks is refused."""
    from polyvlm.models import factory

    cfg = ModelConfig(init_from=f"hf-llava:{hf_llava_dir}", template="llama3")
    with caplog.at_level("INFO", logger="polyvlm.models"):
        model, _ = factory.build(cfg)
    assert (cfg.vision_feature_layer, cfg.vision_select) == (-1, "full") and model.cfg is cfg
    assert (model.vision.feature_layer, model.vision.select, model.vision.tokens_per_image) == (-1, "full", 17)
    assert "model.vision_select='full'; using it (the config said 'patch')" in caplog.text
    with pytest.raises(ValueError, match="connector 'moe'"):
        factory.build(ModelConfig(init_from=f"hf-llava:{hf_llava_dir}", connector="moe", vision_feature_layer=-1,
                                  vision_select="full"))


def test_readme_train_from_the_quick_starts_export(tmp_path, monkeypatch):
    """README "Export and import": `polyvlm train recipes/tiny.yaml model.init_from=hf-llava:exports/quickstart-llava`
    on an export of the quick start's model (model.vision_select=full: CLS + patches, exported as strategy "full")
    trains, and the run keeps the checkpoint's readout."""
    import yaml

    from polyvlm.cli import main
    from polyvlm.models.checkpoint import load
    from polyvlm.quickstart.run import BASE_OVERRIDES
    from polyvlm.testing import make_tiny_checkpoint

    assert "model.vision_select=full" in BASE_OVERRIDES
    ckpt = make_tiny_checkpoint(tmp_path / "runs/quickstart/stage2/final", overrides=list(BASE_OVERRIDES))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipes").symlink_to(ROOT / "recipes")
    assert main(["export", str(ckpt), "--format", "hf-llava", "--out", "exports/quickstart-llava"]) == 0
    assert read_json(tmp_path / "exports/quickstart-llava/config.json")["vision_feature_select_strategy"] == "full"
    assert main(["train", "recipes/tiny.yaml", "model.init_from=hf-llava:exports/quickstart-llava",
                 "train.output_dir=runs/from_llava", "train.max_steps=2", "data.path=builtin:scenes:qa:8",
                 "train.batch_size=2", "--no-progress"]) == 0
    run = tmp_path / "runs/from_llava"
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["vision_select"] == "full"
    model, _ = load(run / "final")
    assert model.vision.select == "full" and model.vision.tokens_per_image == 65  # CLS + 8x8 patches


def _write_config(path, data):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(data))
    return path


def test_bad_directories_get_clear_errors(tmp_path, hf_llava_dir):
    with pytest.raises(HFImportError, match="no config.json"):
        import_hf_llava(tmp_path)
    with pytest.raises(HFImportError, match="model_type is 'qwen2'"):
        import_hf_llava(_write_config(tmp_path / "lm", {"model_type": "qwen2"}))
    odd = {"model_type": "llava_next", "vision_config": {"model_type": "clip_vision_model", "image_size": 32},
           "text_config": {"model_type": "llama"}, "image_grid_pinpoints": [[32, 48]]}
    with pytest.raises(HFImportError, match=r"next: image_grid_pinpoints: .*not a multiple of the encoder's image size 32"):
        import_hf_llava(_write_config(tmp_path / "next", odd))
    siglip = {"model_type": "llava", "vision_config": {"model_type": "siglip_vision_model"},
              "text_config": {"model_type": "llama"}, "vision_feature_select_strategy": "default"}
    with pytest.raises(HFImportError, match="SigLIP has no CLS"):
        import_hf_llava(_write_config(tmp_path / "sig", siglip))
    custom = _with_template(hf_llava_dir, tmp_path / "custom", "{% for m in messages %}{{ m['content'] }}\n{% endfor %}")
    with pytest.raises(HFImportError, match="matches none of polyvlm's"):
        import_hf_llava(custom)
    broken = _with_template(hf_llava_dir, tmp_path / "broken", (hf_llava_dir / "chat_template.jinja").read_text())
    (broken / "preprocessor_config.json").write_text('{"image_mean": [0.5, ')
    with pytest.raises(HFImportError, match=r"broken/preprocessor_config.json: not valid JSON"):
        import_hf_llava(broken)


def _with_template(src, dst, jinja: str):
    """A copy of the Llava directory `src` whose chat template is `jinja`."""
    import shutil

    shutil.copytree(src, dst)
    (dst / "chat_template.jinja").write_text(jinja)
    tc = read_json(dst / "tokenizer_config.json")
    tc.pop("chat_template", None)
    (dst / "tokenizer_config.json").write_text(json.dumps(tc))
    return dst


def test_init_from_hf_llava_into_anyres(exported):
    """LLaVA-NeXT style: start anyres training from a Llava checkpoint; image_newline starts fresh."""
    from polyvlm.models import factory

    cfg = ModelConfig(init_from=f"hf-llava:{exported}", image_aspect_ratio="anyres_max_4")
    model, processor = factory.build(cfg)
    assert model.image_newline.shape == (model.llm.config.hidden_size,)
    assert processor.config.image_aspect_ratio == "anyres_max_4" and model.cfg is cfg
    with pytest.raises(ValueError, match="no audio encoder"):
        factory.build(ModelConfig(init_from=f"hf-llava:{exported}", audio_config={"model_type": "whisper"}))


def test_polyvlm_train_from_hf_llava(exported, tiny, tmp_path, capsys):
    """`polyvlm train RECIPE model.init_from=hf-llava:DIR`: training starts from the Llava weights (the frozen
    vision tower is still the exported one) and writes a polyvlm checkpoint that exports again."""
    from polyvlm.cli import main as polyvlm_main
    from polyvlm.models.checkpoint import load
    from polyvlm.testing import TINY_RECIPE

    out = tmp_path / "run"
    assert polyvlm_main(["train", str(TINY_RECIPE), f"model.init_from=hf-llava:{exported}", "data.path=builtin:scenes:qa:8",
                         f"train.output_dir={out}", "train.max_steps=2", "train.batch_size=2", "--no-progress"]) == 0
    assert f"checkpoint: {out / 'final'}" in capsys.readouterr().out
    model, processor = load(out / "final")
    assert model.cfg.init_from == f"hf-llava:{exported}"
    for k, v in tiny[0].vision.state_dict().items():
        assert torch.equal(model.vision.state_dict()[k], v), k
    moved = [k for k, v in tiny[0].llm.state_dict().items() if not torch.equal(model.llm.state_dict()[k], v)]
    assert moved  # the language model trained
    again = export_hf_llava(model, processor, tmp_path / "again")
    assert read_json(again / "config.json")["text_config"]["architectures"] == ["Qwen2ForCausalLM"]


def test_eval_and_chat_run_on_an_exported_directory(tiny_ckpt, exported, tmp_path, capsys):
    """`polyvlm eval --model hf-llava:DIR` and `polyvlm chat hf-llava:DIR` load the Llava directory itself and
    answer exactly as the polyvlm checkpoint it was exported from; a directory without config.json is refused."""
    from polyvlm.cli import main as polyvlm_main

    preds = {}
    for name, model in (("ckpt", str(tiny_ckpt)), ("hf", f"hf-llava:{exported}")):
        out = tmp_path / name
        assert polyvlm_main(["eval", "--model", model, "--tasks", "quickstart", "--limit", "6",
                             "--max-new-tokens", "5", "--out", str(out)]) == 0
        rows = [json.loads(x) for x in (out / "samples_quickstart.jsonl").read_text(encoding="utf-8").splitlines()]
        preds[name] = [r["prediction"] for r in rows]
        assert json.loads((out / "results.json").read_text())["tasks"]["quickstart"]["n"] == 6
    assert preds["hf"] == preds["ckpt"] and any(preds["hf"])
    capsys.readouterr()
    answers = []
    for model in (str(tiny_ckpt), f"hf-llava:{exported}"):
        assert polyvlm_main(["chat", model, "What colour is the shape?", "--max-tokens", "5"]) == 0
        answers.append(capsys.readouterr().out)
    assert answers[0] == answers[1]
    assert polyvlm_main(["eval", "--model", f"hf-llava:{tmp_path}", "--tasks", "quickstart", "--out",
                         str(tmp_path / "bad")]) == 2
    assert "not a hf-llava checkpoint" in (err := capsys.readouterr().err) and "no config.json" in err
