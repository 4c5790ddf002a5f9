"""Training throughput at real model shapes: polyvlm (packing, varlen attention, chunked loss over supervised
positions) against Hugging Face `LlavaForConditionalGeneration` fed the three ways a competent user would:
(a) padded batches in random order, (b) padded and length-grouped (Trainer's `group_by_length`, its own
`get_length_grouped_indices`), (c) padding-free packed rows (`DataCollatorWithFlattening`, as TRL and LLaMA-Factory
offer: position ids restart per sample and transformers builds the block-causal mask from them).

    python benchmarks/train_throughput.py                  # Qwen2-0.5B-shaped LM (hidden 896, vocab 151,936) + SigLIP
    python benchmarks/train_throughput.py --shape tiny     # the ~20M model of earlier measurements

Same data, samples, weights shape, trainable parameters (connector + LM with its tied embedding; the vision tower
frozen) and optimizer on every side: AdamW as the Hugging Face Trainer sets it up by default (the fused kernel,
weight decay 0, gradients clipped at norm 1), which is also what polyvlm's defaults do. Each run is its own process,
so its peak memory (RSS on CPU, `max_memory_allocated` on CUDA) and CPU time are its own. The last line is
`ratio: <polyvlm / fastest baseline supervised tokens/s>`.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAPES = {
    # Qwen2-0.5B's LM (hidden 896, 14 heads / 2 KV heads, MLP 4864, tied 151,936-row embedding), fewer layers so
    # it runs on a CPU; a SigLIP-base-shaped encoder (768 wide, patch 16 at 224 px: 196 tokens per picture)
    "real": {"vision": {"model_type": "siglip_vision_model", "hidden_size": 768, "intermediate_size": 3072,
                        "num_hidden_layers": 2, "num_attention_heads": 12, "image_size": 224, "patch_size": 16},
             "llm": {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 2,
                     "num_attention_heads": 14, "num_key_value_heads": 2, "max_position_embeddings": 4096,
                     "vocab_size": 151936, "tie_word_embeddings": True, "rope_theta": 1000000.0},
             "samples": 32, "batch": 8, "describe": "SigLIP-shaped ViT (768, 2 layers) + Qwen2-0.5B-shaped LM "
                                                   "(896, 2 layers, vocab 151,936)"},
    # gpu_check.py on one H100-class GPU: the whole Qwen2-0.5B (24 layers) behind a SigLIP-so400m-shaped tower
    "gpu": {"vision": {"model_type": "siglip_vision_model", "hidden_size": 1152, "intermediate_size": 4304,
                       "num_hidden_layers": 27, "num_attention_heads": 16, "image_size": 384, "patch_size": 14},
            "llm": {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                    "num_attention_heads": 14, "num_key_value_heads": 2, "max_position_embeddings": 4096,
                    "vocab_size": 151936, "tie_word_embeddings": True, "rope_theta": 1000000.0},
            "samples": 512, "batch": 16, "describe": "SigLIP-so400m-shaped ViT + Qwen2-0.5B-shaped LM (24 layers)"},
    "tiny": {"vision": {"model_type": "clip_vision_model", "hidden_size": 128, "intermediate_size": 512,
                        "num_hidden_layers": 4, "num_attention_heads": 4, "image_size": 64, "patch_size": 8},
             "llm": {"model_type": "llama", "hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 8,
                     "num_attention_heads": 6, "num_key_value_heads": 6, "max_position_embeddings": 2048,
                     "tie_word_embeddings": False},
             "samples": 96, "batch": 16, "describe": "CLIP-config ViT + 8-layer Llama (~20M), vocab 600"},
}
BASELINES = {"hf_padded": "HF Llava (padded)", "hf_grouped": "HF Llava (padded, length-grouped)",
             "hf_packed": "HF Llava (packed, position ids)"}


def _encoder(shape: dict) -> tuple[str, dict]:
    v = shape["vision"]
    family = "siglip" if v["model_type"].startswith("siglip") else "clip"
    return family, {k: x for k, x in v.items() if k != "model_type"}


def make_data(out: Path, n: int, image_size: int, seed: int = 0) -> Path:
    """Captions of 10-30 tokens (stage-1 style) and instructions of 50-400 tokens (about 2.5 tokens a word of the
    tiny vocabulary), 20% of the instructions text-only; each picture adds its encoder's tokens."""
    from polyvlm.data.scenes import corpus, make_split, write_jsonl

    words = " ".join(corpus()).split()
    rng = random.Random(seed)
    base = make_split(out, n, seed, "qa", size=image_size)
    recs = []
    for i, r in enumerate(base):
        kind = rng.random()
        if kind < 0.3:
            q, a = "<image>\nDescribe the picture briefly.", " ".join(rng.choices(words, k=rng.randint(4, 12)))
        else:
            q = ("<image>\n" if kind < 0.8 else "") + " ".join(rng.choices(words, k=rng.randint(10, 80)))
            a = " ".join(rng.choices(words, k=rng.randint(10, 80)))
        rec = {"id": f"b{i}", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}
        if q.startswith("<image>"):
            rec["image"] = r["image"]
        recs.append(rec)
    return write_jsonl(recs, out / "bench.jsonl")


def run_polyvlm(shape: dict, data: Path, out: Path, samples: int, batch: int, device: str) -> dict:
    from polyvlm.config import load_config
    from polyvlm.train import loop

    family, _ = _encoder(shape)
    cfg = load_config(None, [
        f"model.vision_config={json.dumps(shape['vision'])}", f"model.llm_config={json.dumps(shape['llm'])}",
        "model.tokenizer=builtin:tiny", "model.max_length=2048", f"data.path={data}", f"train.output_dir={out}",
        f"train.max_steps={samples // batch}", f"train.batch_size={batch}", "train.packing=true", "train.lr=1e-4",
        "train.tensorboard=false", "train.log_every=1000", f"train.device={device}", "train.dtype=auto",
        *(["model.vision_feature_layer=-1", "model.vision_select=full"] if family == "siglip" else []),
    ])
    trainable: list[int] = []
    apply_stage = loop.apply_stage

    def counted(*args, **kwargs):  # the parameters the run trains, reported next to the baselines'
        groups = apply_stage(*args, **kwargs)
        trainable.append(sum(p.numel() for g in groups for p in g["params"]))
        return groups

    loop.apply_stage = counted
    try:
        res = loop.train(cfg, show_progress=False)
    finally:
        loop.apply_stage = apply_stage
    last = res.history[-1]
    return {"supervised_tokens_per_s": last["supervised_tokens_per_s"], "tokens_per_s": last["tokens_per_s"],
            "padding_fraction": last["padding_fraction"], "trainable": trainable[0]}


def _hf_model(shape: dict, proc, vocab: int):
    from transformers import (
        AutoConfig,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        SiglipVisionConfig,
    )

    family, vision = _encoder(shape)
    text = {k: v for k, v in shape["llm"].items() if k not in ("model_type", "vocab_size")}
    vcfg = (SiglipVisionConfig if family == "siglip" else CLIPVisionConfig)(**vision)
    cfg = LlavaConfig(vision_config=vcfg, text_config=AutoConfig.for_model(shape["llm"]["model_type"], vocab_size=vocab, **text),
                      image_token_id=proc.media_token_ids["image"], projector_hidden_act="gelu",
                      vision_feature_layer=-1 if family == "siglip" else -2,
                      vision_feature_select_strategy="full" if family == "siglip" else "default")
    model = LlavaForConditionalGeneration(cfg)
    model.model.vision_tower.requires_grad_(False)
    return model


def _hf_batches(examples: list, order: list[int], batch: int, mode: str, pad_id: int):
    """(input_ids, attention_mask, labels, position_ids, pixels) per step, fed the way `mode` says."""
    import torch
    from transformers import DataCollatorWithFlattening
    from transformers.trainer_pt_utils import get_length_grouped_indices

    from polyvlm.models.processor import IGNORE

    if mode == "hf_grouped":  # Trainer(group_by_length=True): megabatches of 50 batches sorted by length
        order = get_length_grouped_indices([len(examples[i][0].input_ids) for i in order], batch,
                                           generator=torch.Generator().manual_seed(0))
    flatten = DataCollatorWithFlattening(return_position_ids=True)
    for s in range(len(order) // batch):
        items = [examples[i] for i in order[s * batch : (s + 1) * batch]]
        pix = [p for _, p in items if p is not None]
        pixels = torch.cat(pix) if pix else None
        if mode == "hf_packed":
            b = flatten([{"input_ids": e.input_ids, "labels": e.labels} for e, _ in items], return_tensors="pt")
            yield b["input_ids"], None, b["labels"], b["position_ids"], pixels
            continue
        width = max(len(e.input_ids) for e, _ in items)
        ids = torch.full((len(items), width), pad_id)
        labels = torch.full((len(items), width), IGNORE)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for i, (e, _) in enumerate(items):
            ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids)
            labels[i, : len(e.labels)] = torch.tensor(e.labels)
            mask[i, : len(e.input_ids)] = 1
        yield ids, mask, labels, None, pixels


def run_hf(shape: dict, data: Path, samples: int, batch: int, mode: str, device: str) -> dict:
    import torch

    from polyvlm.data.readers import iter_records
    from polyvlm.models.factory import builtin_tokenizer
    from polyvlm.models.processor import IGNORE, Processor, ProcessorConfig
    from polyvlm.train.dataset import open_image
    from polyvlm.utils import resolve_device, resolve_dtype

    torch.manual_seed(0)
    dev = resolve_device(device)
    dtype = resolve_dtype("auto", dev)
    tok = builtin_tokenizer("builtin:tiny")
    family, vision = _encoder(shape)
    side = vision["image_size"]
    n_img = (side // vision["patch_size"]) ** 2
    mean, std = ((0.5,) * 3, (0.5,) * 3) if family == "siglip" else (
        (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
    proc = Processor(tok, ProcessorConfig(template="chatml", max_length=2048, image_size=side, image_mean=mean,
                                          image_std=std, tokens_per_media={"image": n_img}))
    model = _hf_model(shape, proc, max(len(tok), shape["llm"].get("vocab_size", 0))).to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    # the Trainer's defaults (transformers' training_args.py): optim "adamw_torch_fused" with torch >= 2.8, weight
    # decay 0.0, max_grad_norm 1.0
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0, fused=dev.type in ("cpu", "cuda"))
    examples = []
    for r in iter_records([data]):
        enc = proc.encode(r.turns, {m: len(v) for m, v in r.media.items()})
        imgs = [open_image(data.parent / p) for p in r.media.get("image", [])]
        examples.append((enc, proc.images_to_pixels(imgs) if imgs else None))
    order = list(range(len(examples)))[:samples]
    random.Random(0).shuffle(order)
    sup = cells = real = 0
    model.train()
    autocast = torch.autocast(dev.type, dtype=dtype) if dtype != torch.float32 else torch.autocast(dev.type, enabled=False)
    t0 = time.time()
    for ids, mask, labels, pos, pixels in _hf_batches(examples, order, batch, mode, proc.pad_id):
        to = (lambda x: None if x is None else x.to(dev))  # noqa: E731
        with autocast:
            out = model(input_ids=to(ids), attention_mask=to(mask), position_ids=to(pos), labels=to(labels),
                        pixel_values=to(pixels))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sup += int((labels[:, 1:] != IGNORE).sum())
        cells += ids.numel()
        real += ids.numel() if mask is None else int(mask.sum())
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.time() - t0
    return {"supervised_tokens_per_s": sup / dt, "tokens_per_s": real / dt, "padding_fraction": 1 - real / cells,
            "trainable": sum(p.numel() for p in params)}


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    shape = SHAPES[args.shape]
    cpu0 = time.process_time()
    if args.side == "polyvlm":
        res = run_polyvlm(shape, Path(args.data), Path(args.work) / args.side, args.samples, args.batch_size, args.device)
    else:
        res = run_hf(shape, Path(args.data), args.samples, args.batch_size, args.side, args.device)
    res["cpu_s"] = time.process_time() - cpu0  # the whole child: building, data preparation, training (, saving)
    if torch.cuda.is_available() and args.device != "cpu":
        res["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        res["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(res))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=sorted(SHAPES), default="real")
    p.add_argument("--samples", type=int, default=None, help="default: 32 (real), 96 (tiny)")
    p.add_argument("--batch-size", type=int, default=None, help="default: 8 (real), 16 (tiny)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu, cuda, ... (polyvlm's --device values)")
    p.add_argument("--repeats", type=int, default=1, help="alternate the sides this many times, keep each one's best")
    p.add_argument("--baselines", default=",".join(BASELINES),
                   help=f"comma-separated baselines to run (default: all of {', '.join(BASELINES)}); the ratio is over "
                        "the fastest of those run")
    p.add_argument("--side", choices=["polyvlm", *BASELINES], help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args()
    chosen = [b for b in args.baselines.split(",") if b]
    if not chosen or set(chosen) - set(BASELINES):
        p.error(f"--baselines: expected some of {', '.join(BASELINES)}, got '{args.baselines}'")
    shape = SHAPES[args.shape]
    args.samples = args.samples or shape["samples"]
    args.batch_size = args.batch_size or shape["batch"]
    if args.side:
        child(args)
        return
    work = Path(tempfile.mkdtemp(prefix="polyvlm-bench-"))
    data = make_data(work / "data", args.samples, shape["vision"]["image_size"])
    results: dict[str, dict] = {}
    failed: dict[str, str] = {}
    # the machine is shared: alternate the sides so load changes hit all of them, and keep each side's best run
    for _ in range(args.repeats):
        for side in ("polyvlm", *chosen):
            cmd = [sys.executable, __file__, "--side", side, "--data", str(data), "--work", str(work), "--shape",
                   args.shape, "--samples", str(args.samples), "--batch-size", str(args.batch_size), "--threads",
                   str(args.threads), "--device", args.device]
            r = subprocess.run(cmd, capture_output=True, text=True)
            line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
            if r.returncode != 0 or not line:
                # a baseline that runs out of memory (killed: SIGKILL) is a result too; polyvlm failing is not
                why = f"killed by signal {-r.returncode} (out of memory?)" if r.returncode < 0 else r.stderr[-3000:]
                if side == "polyvlm":
                    sys.exit(f"polyvlm failed:\n{why}")
                print(f"  {side}: failed: {why}", file=sys.stderr)
                failed.setdefault(side, why.splitlines()[-1] if why else f"exit {r.returncode}")
                continue
            res = json.loads(line[0][7:])
            print(f"  {side}: {res['supervised_tokens_per_s']:.1f} supervised tok/s, peak {res['peak_mb']:.0f} MB, "
                  f"CPU {res['cpu_s']:.0f} s", file=sys.stderr)
            best = results.get(side)
            if best is None or res["supervised_tokens_per_s"] > best["supervised_tokens_per_s"]:
                results[side] = res
    print(f"{'':36}{'supervised tok/s':>18}{'padding':>10}{'peak MB':>10}{'CPU s':>8}{'trainable':>14}")
    for side, name in (("polyvlm", "polyvlm (packed, chunked loss)"), *((b, BASELINES[b]) for b in chosen)):
        r = results.get(side)
        if r is None:
            print(f"{name:36}  failed: {failed.get(side, '')[:60]}")
            continue
        print(f"{name:36}{r['supervised_tokens_per_s']:>18.1f}{r['padding_fraction']:>10.2f}{r['peak_mb']:>10.0f}"
              f"{r['cpu_s']:>8.0f}{r['trainable']:>14,}")
    ran = [s for s in chosen if s in results]
    print(f"shape: {args.shape} ({shape['describe']}); samples: {args.samples}, batch size: {args.batch_size}, "
          f"device: {args.device}, best of {args.repeats}; baselines run: {', '.join(chosen)}")
    print("RESULTS " + json.dumps(results))  # for benchmarks/gpu_check.py
    if not ran:
        print("ratio: inf (every baseline failed)")
        return
    fastest = max(ran, key=lambda s: results[s]["supervised_tokens_per_s"])
    print(f"fastest baseline: {BASELINES[fastest]}")
    print(f"ratio: {results['polyvlm']['supervised_tokens_per_s'] / results[fastest]['supervised_tokens_per_s']:.2f}")


if __name__ == "__main__":
    main()
