"""PandaGPT: one token per input through one shared projection, the sum across modalities, its prompt format,
and the released delta on a tiny Vicuna-shaped (Llama) model.

References (yxuansu/PandaGPT): code/model/openllama.py (PROMPT_START `### Human: <Img>`, prompt_wrap /
prepare_generation_embedding: bos + prefix + one projected row + `</Img> {q}\\n### Assistant:`;
extract_multimodal_feature: `torch.cat(features).sum(dim=0)`; LoraConfig on q/k/v/o_proj), code/web_demo.py
(multi-turn prompt text), code/config/openllama_peft.yaml (r 32, alpha 32, dropout 0.1), its ImageBind copy
models/imagebind_model.py (audio: Normalize only)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from peft import LoraConfig, get_peft_model
from PIL import Image
from transformers import LlamaForCausalLM

from polyvlm.data.records import RecordError, Turn
from polyvlm.models import pandagpt
from polyvlm.models.factory import builtin_tokenizer
from polyvlm.models.templates import get_template
from polyvlm.testing import make_tiny_pandagpt

ARCH = {"variant": "tiny", "out_dim": 24}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """`polyvlm.testing.make_tiny_pandagpt`'s release: a tiny Vicuna directory (Llama + tokenizer), an ImageBind
    file and a PandaGPT delta (fp16 OrderedDict) at `delta/pytorch_model.pt`."""
    d = tmp_path_factory.mktemp("pandagpt")
    make_tiny_pandagpt(d)
    return d


@pytest.fixture(scope="module")
def loaded(files):
    return pandagpt.build(str(files / "vicuna"), str(files / "imagebind.pth"), files / "delta" / "pytorch_model.pt", ARCH)


def _media(d):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (200, 260, 3), dtype=np.uint8)).save(d / "cat.png")
    Image.fromarray(rng.integers(0, 255, (240, 240), dtype=np.uint8)).save(d / "heat.png")
    Image.fromarray(rng.integers(0, 65535, (230, 250), dtype=np.uint16)).save(d / "depth.png")
    sf.write(d / "beep.wav", np.sin(np.arange(16000 * 3) / 4.0).astype(np.float32), 16000)
    np.save(d / "walk.npy", rng.standard_normal((6, 2000)).astype(np.float32))
    return {"image": [d / "cat.png"], "audio": [d / "beep.wav"], "thermal": [d / "heat.png"],
            "depth": [d / "depth.png"], "imu": [d / "walk.npy"]}


def test_delta_loads_into_lora_and_projection(files, loaded):
    model, _ = loaded
    delta = torch.load(files / "delta" / "pytorch_model.pt", weights_only=True)
    assert model.cfg.lora_r == 32 and model.cfg.lora_alpha == 32 and model.cfg.lora_dropout == 0.1
    state = model.state_dict()
    for k, v in delta.items():
        ours = "connector.proj." + k.split(".")[-1] if k.startswith("llama_proj") else "llm." + k[len("llama_model."):]
        torch.testing.assert_close(state[ours], v.float())
    assert sum(".lora_" in k for k in state) == sum(".lora_" in k for k in delta) == 2 * 2 * 4


def test_prompt_matches_pandagpt_generation_embedding(files, loaded):
    """Our ids/embeddings vs openllama.py's prepare_generation_embedding rebuilt on a peft Llama with the delta."""
    model, processor = loaded
    inputs = [(m, pandagpt.load_input(m, p[0])) for m, p in _media(files).items()]
    q = "What do you sense?"
    ids, embeds = pandagpt.prompt(model, processor, [Turn("user", q)], inputs)
    tok = processor.tokenizer
    before = tok("### Human: <Img>", add_special_tokens=False).input_ids
    after = tok("</Img> " + q + "\n### Assistant:", add_special_tokens=False).input_ids
    img = processor.media_token_ids["image"]
    assert ids == [tok.bos_token_id, *before, img, *after]

    delta = torch.load(files / "delta" / "pytorch_model.pt", weights_only=True)
    llama = LlamaForCausalLM.from_pretrained(files / "vicuna")
    llama = get_peft_model(llama, LoraConfig(r=32, lora_alpha=32, lora_dropout=0.1, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    llama.load_state_dict({k[len("llama_model."):]: v.float() for k, v in delta.items() if "lora" in k}, strict=False)
    llama.eval()
    proj = torch.nn.Linear(24, 64)
    proj.load_state_dict({"weight": delta["llama_proj.weight"].float(), "bias": delta["llama_proj.bias"].float()})
    ib = model.vision.tower
    feats = []
    with torch.no_grad():
        for m, x in inputs:  # per modality: ImageBind embedding (audio unscaled) -> llama_proj -> [1, 1, d]
            e = ib.embed({"image": "vision"}.get(m, m), x[None], scale=m != "audio")
            feats.append(proj(e).unsqueeze(1))
        row = torch.cat(feats).sum(dim=0).unsqueeze(0)  # [1, 1, d]
        emb = llama.get_input_embeddings()
        ref = torch.cat([emb(torch.tensor([[tok.bos_token_id]])), emb(torch.tensor([before])), row,
                         emb(torch.tensor([after]))], dim=1)
        torch.testing.assert_close(embeds, ref, atol=1e-5, rtol=0)
        want = llama(inputs_embeds=ref).logits
        got = model.llm(inputs_embeds=embeds).logits
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def test_one_token_per_input_and_the_sum(files, loaded):
    model, _ = loaded
    inputs = [(m, pandagpt.load_input(m, p[0])) for m, p in _media(files).items()]
    rows = pandagpt.encode_inputs(model, inputs)
    assert rows.shape == (5, 64)
    torch.testing.assert_close(pandagpt.summed_row(model, inputs), rows.sum(0, keepdim=True))
    # audio: mean of per-clip unit vectors (3 clips), not x20; thermal keeps x10
    a = model.vision.embed("audio", inputs[1][1][None])
    assert 0.1 < float(a.norm()) <= 1.0 + 1e-5
    assert float(model.vision.embed("thermal", inputs[2][1][None]).norm()) == pytest.approx(10.0, rel=1e-4)


def test_answer_generates_until_the_separator(files, loaded):
    model, processor = loaded
    media = _media(files)
    out = pandagpt.answer(model, processor, "Describe it.", {"audio": media["audio"], "image": media["image"]},
                          max_new_tokens=5)
    assert isinstance(out, str) and "###" not in out


def test_template_renders_pandagpt_web_demo_text():
    t = get_template("pandagpt")
    turns = [Turn("user", "<image>\nWhat is it?"), Turn("assistant", "A cat."), Turn("user", "Colour?"),
             Turn("assistant", "Grey.")]
    # web_demo.py: first turn f'{q}\n### Assistant: {a}\n###', later f' Human: {q}\n### Assistant: {a}\n###'
    prompt_text = "What is it?\n### Assistant: A cat.\n###" + " Human: Colour?\n### Assistant: Grey.\n###"
    r = t.render(turns)
    assert r.text == "<s>### Human: <Img><image></Img> " + prompt_text
    # the space after "Assistant:" is the answer's (see the next test)
    assert [r.text[a:b] for a, b in r.spans] == [" A cat.\n###", " Grey.\n###"]
    gen = t.render(turns[:1], add_generation_prompt=True).text
    assert gen == "<s>### Human: <Img><image></Img> What is it?\n### Assistant:"
    tok = builtin_tokenizer("builtin:tiny")
    tok.chat_template = t.jinja
    msgs = [{"role": x.role, "content": x.text} for x in turns]
    assert tok.apply_chat_template(msgs, tokenize=False) == r.text


def test_labels_are_everything_generated_after_the_prompt():
    """PandaGPT's code/model/openllama.py (build_one_instance) supervises `turn['value'] + '\\n###'` tokenised on its
    own, i.e. every token after the generation prompt `...### Assistant:`. With a tokenizer that splits the space
    before a word ("Ġ", "green"), the space token must be supervised too, else the model never learns to start
    its answer after ":" and generation goes astray (the quick start's builtin:tiny splits most answers so)."""
    from polyvlm.models.processor import Processor, ProcessorConfig

    tok = builtin_tokenizer("builtin:tiny")
    proc = Processor(tok, ProcessorConfig(template="pandagpt", max_length=256, tokens_per_media={"image": 1}))
    split = 0
    for q, a in [("What colour are the shapes?", "green"), ("Какого цвета фигуры?", "фиолетовый"),
                 ("这些图形是什么颜色？", "橙色"), ("Quantas formas há?", "dois")]:
        turns = [Turn("user", "<image>\n" + q), Turn("assistant", a)]
        enc = proc.encode(turns, {"image": 1})
        prompt = proc.encode(turns[:1], {"image": 1}, add_generation_prompt=True, truncate=False).input_ids
        assert enc.input_ids[: len(prompt)] == prompt
        assert all(lab == -100 for lab in enc.labels[: len(prompt)])
        assert enc.labels[len(prompt):] == enc.input_ids[len(prompt):]
        assert tok.decode(enc.input_ids[len(prompt):]) == f" {a}\n###"
        split += tok.convert_ids_to_tokens(enc.input_ids[len(prompt)]) == "Ġ"
    assert split  # the case that failed before: a space token of its own


def test_bad_inputs_name_the_file(files, tmp_path, loaded):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(RecordError, match="broken.wav.*does not decode"):
        pandagpt.load_input("audio", bad)
    np.save(tmp_path / "short.npy", np.zeros((3, 50)))
    with pytest.raises(RecordError, match=r"short.npy.*\(3, 50\)"):
        pandagpt.load_input("imu", tmp_path / "short.npy")
    with pytest.raises(RecordError, match="no modality 'smell'"):
        pandagpt.load_input("smell", bad)
    with pytest.raises(RecordError, match="missing.png"):
        pandagpt.load_input("thermal", tmp_path / "missing.png")


def test_bad_delta_is_refused(files, loaded, tmp_path):
    model, _ = loaded
    wrong = tmp_path / "other.pt"
    torch.save({"model.embed_tokens.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(ValueError, match="other.pt: not a PandaGPT delta"):
        pandagpt.load_delta(model, wrong)
    d = torch.load(files / "delta" / "pytorch_model.pt", weights_only=True)
    d["llama_proj.weight"] = torch.zeros(64, 1024).half()  # a delta for imagebind_huge
    torch.save(d, tmp_path / "huge.pt")
    with pytest.raises(ValueError, match=r"llama_proj.weight is \(64, 1024\)"):
        pandagpt.load_delta(model, tmp_path / "huge.pt")


def _delta_dir(files, tmp_path, sidecar: bool = True):
    d = tmp_path / "delta"
    d.mkdir()
    (d / "pytorch_model.pt").write_bytes((files / "delta" / "pytorch_model.pt").read_bytes())
    if sidecar:
        (d / "pandagpt.json").write_text(json.dumps({"llm": str(files / "vicuna"), "imagebind": "../ib.pth",
                                                     "imagebind_arch": ARCH, "max_tgt_len": 40}))
        (tmp_path / "ib.pth").write_bytes((files / "imagebind.pth").read_bytes())
    return d


def test_layout_detects_and_loads_the_delta(files, loaded, tmp_path):
    """`pandagpt:DIR` (and plain DIR: detected) gives the model `pandagpt.build` gives; a generator answers."""
    import polyvlm
    from polyvlm.infer import ChatRequest
    from polyvlm.models.layouts import detect_layout

    d = _delta_dir(files, tmp_path)
    assert detect_layout(d) == "pandagpt"
    model, processor = polyvlm.load(f"pandagpt:{d}")
    # max_tgt_len counts the text after <s>### Human: <Img> + the row, as openllama.py does
    prefix = 2 + len(processor.tokenizer("### Human: <Img>", add_special_tokens=False).input_ids)
    assert processor.config.max_length == 40 + prefix
    ref, _ = loaded
    ids = torch.tensor([[processor.tokenizer.bos_token_id, 40, 53, 89]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, ref(ids).logits)
    gen = polyvlm.load_generator(str(d))
    img = Image.fromarray(np.full((64, 80, 3), 200, np.uint8))
    out = gen.generate([ChatRequest([{"role": "user", "content": "<image>\nWhat is it?"}], images=[img],
                                    max_new_tokens=4)])[0]
    assert out.completion_tokens <= 4


def test_layout_finds_pandagpt_tree_or_env_and_says_what_is_missing(files, tmp_path, monkeypatch):
    from polyvlm.models.layouts import LayoutError, load_checkpoint

    root = tmp_path / "pretrained_ckpt"
    delta = root / "pandagpt_ckpt" / "7b"
    delta.mkdir(parents=True)
    (delta / "pytorch_model.pt").write_bytes((files / "delta" / "pytorch_model.pt").read_bytes())
    with pytest.raises(LayoutError, match=r"Vicuna directory '.*vicuna_ckpt/7b_v0' does not exist"):
        load_checkpoint(f"pandagpt:{delta}")
    lone = _delta_dir(files, tmp_path, sidecar=False)
    with pytest.raises(LayoutError, match="POLYVLM_PANDAGPT_LLM"):
        load_checkpoint(f"pandagpt:{lone}")
    monkeypatch.setenv("POLYVLM_PANDAGPT_LLM", str(files / "vicuna"))
    monkeypatch.setenv("POLYVLM_PANDAGPT_IMAGEBIND", str(files / "imagebind.pth"))
    with pytest.raises(LayoutError, match="does not fit this ImageBind"):  # huge architecture by default
        load_checkpoint(f"pandagpt:{lone}")


def test_merge_lora_folds_the_delta(files, loaded, tmp_path):
    from polyvlm.lora_cli import main
    from polyvlm.models.layouts import load_checkpoint

    d = _delta_dir(files, tmp_path)
    assert main([f"pandagpt:{d}", "--out", str(tmp_path / "merged")]) == 0
    merged, processor = load_checkpoint(str(tmp_path / "merged"))
    ref, _ = loaded
    inputs = [("image", pandagpt.load_input("image", _media(files)["image"][0]))]
    ids, embeds = pandagpt.prompt(ref, processor, [Turn("user", "What is it?")], inputs)
    _, embeds2 = pandagpt.prompt(merged, processor, [Turn("user", "What is it?")], inputs)
    with torch.no_grad():
        got, want = merged.llm(inputs_embeds=embeds2).logits, ref.llm(inputs_embeds=embeds).logits
        # fp32 rounding of W + BA against W x + B(A x), relative to the logits' scale (initializer_range 0.5)
        torch.testing.assert_close(got, want, atol=1e-4 * want.abs().max().item(), rtol=0)
