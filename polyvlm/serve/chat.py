"""`polyvlm chat CKPT [--image PATH] [--video PATH] [--audio PATH] [--thermal PATH] ... "question"`: one-shot answers
from a checkpoint in the terminal (one `--<modality>` flag per registered modality), or the interactive chat."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from polyvlm.infer import ChatRequest, Video
from polyvlm.infer.request import media_fields
from polyvlm.utils import add_device_flags, device_from_args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="polyvlm chat", description="Ask a checkpoint a question about media.")
    p.add_argument("checkpoint", help="checkpoint directory in any layout polyvlm reads (e.g. runs/quickstart/stage2/final), or FORMAT:DIR")
    p.add_argument("question", nargs="?", help="the question; omit it for an interactive chat")
    p.add_argument("--image", action="append", default=[], help="image file (repeat for several)")
    p.add_argument("--video", action="append", default=[],
                   help="video file (repeat for several); its frames are sampled as the model was trained")
    from polyvlm import media

    for m in media.modalities():  # audio, thermal, depth, imu (and any modality registered later)
        if m.name not in ("image", "video"):
            p.add_argument(f"--{m.name}", action="append", default=[], help=f"{m.help or m.name} (repeat for several)")
    p.add_argument("--system", default=None, help="system prompt")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None)
    add_device_flags(p)
    return p


def load_images(paths: list[str]) -> list:
    """`--image` files as RGB images (polyvlm.media); a missing or unreadable one raises naming the file."""
    return load_inputs("image", paths)


def load_inputs(modality: str, paths: list[str]) -> list:
    """`--<modality>` files decoded by polyvlm.media (a video stays a reference the model samples); a missing or
    unreadable one raises naming the flag and the file."""
    from polyvlm import media

    out = []
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"--{modality} {p}: no such {modality} file")
        if modality == "video":
            out.append(Video(Path(p)))
            continue
        try:
            out.append(media.load(modality, Path(p), where=p))
        except media.MediaError as e:
            raise ValueError(f"--{modality} {e}") from None
    return out


def _media_args(args: argparse.Namespace, modalities: set[str]) -> dict[str, list]:
    """Modality -> decoded inputs of the `--<modality>` flags; a modality the model lacks is refused."""
    from polyvlm import media

    given = {m.name: getattr(args, m.name, []) for m in media.modalities()}
    for m, paths in given.items():
        video_as_frames = m == "video" and "image" in modalities  # frames for an image-only model
        if paths and m not in modalities and not video_as_frames:
            raise ValueError(f"--{m}: this model does not accept {m} input (it accepts "
                             f"{', '.join(sorted(modalities)) or 'text only'})")
    return {m: load_inputs(m, paths) for m, paths in given.items() if paths}


def main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)
    import polyvlm
    from polyvlm.data.records import RecordError

    try:
        device, dtype = device_from_args(args)
    except ValueError as e:
        print(f"polyvlm chat: {e}", file=sys.stderr)
        return 2
    try:
        gen = polyvlm.load_generator(args.checkpoint, device, dtype)
        inputs = _media_args(args, gen.modalities)
    except (FileNotFoundError, RecordError, ValueError) as e:
        print(f"polyvlm chat: {e}", file=sys.stderr)
        return 1
    if args.question is None and args.video:
        print("polyvlm chat: --video needs a question (in the interactive chat, attach it with /video PATH)",
              file=sys.stderr)
        return 2
    if args.question is None:
        from polyvlm.serve.terminal import run_chat  # multi-turn; /image, /audio, /video, /reset, /quit

        return run_chat(gen, max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
                        seed=args.seed, system=args.system, attach=inputs)
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
        {"role": "user", "content": args.question}
    ]
    req = ChatRequest(messages, **media_fields(inputs), max_new_tokens=args.max_tokens,
                      temperature=args.temperature, top_p=args.top_p, seed=args.seed)
    try:
        (out,) = gen.generate([req])
    except ValueError as e:
        print(f"polyvlm chat: {e}", file=sys.stderr)
        return 1
    # the answer and one newline, nothing else on stdout (scripts read it); errors go to stderr
    sys.stdout.write(out.text.rstrip("\n") + "\n")
    sys.stdout.flush()
    return 0
