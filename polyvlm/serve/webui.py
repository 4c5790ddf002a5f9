"""The Gradio web demo at /ui: uploads of every modality the model takes (image, audio, video; thermal, depth and IMU
for PandaGPT models), multi-turn chat, sampling sliders, regenerate, clear, streaming.

Requests go through the server's `Batcher`, so demo users are batched together with API clients.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from polyvlm import media
from polyvlm.data.records import PLACEHOLDERS
from polyvlm.infer import Batcher, BatcherError, ChatRequest, Generator, Video
from polyvlm.infer.request import media_fields
from polyvlm.serve.config import ServeConfig
from polyvlm.serve.errors import APIError
from polyvlm.serve.media import load_media, load_video_frames
from polyvlm.serve.protocol import fit_context
from polyvlm.serve.stops import truncate_at_stop

MISSING = ("the web demo needs Gradio: `pip install 'polyvlm[ui]'` (in a checkout: `pip install -e '.[ui]'`; or just "
           "`pip install gradio`), then restart with --ui")


def _import_gradio() -> Any:
    try:
        import gradio as gr
    except ImportError as e:
        raise RuntimeError(f"{MISSING} ({e})") from None
    return gr


def _new_state() -> dict[str, Any]:
    # turns: [{"role", "text", "images": [path], "audios": [path], "videos": [path], "thermals": [path], ...}] (one
    # key per modality: its name + "s"); attached: uploads already sent
    return {"turns": [], "attached": []}


def build_request(state: dict[str, Any], cfg: ServeConfig, max_tokens: int, temperature: float, top_p: float,
                  modalities: set[str] | frozenset[str] = frozenset({"image"})) -> ChatRequest:
    """The whole conversation as one ChatRequest, media decoded from the uploaded files in order (errors name the
    file). A video goes to a model with a video encoder (`modalities`) as one video, its frames sampled by the model
    as in training; otherwise its frames go to the image encoder."""
    messages, inputs = [], {m.name: [] for m in media.modalities()}
    order = ["image", "video", *(m for m in inputs if m not in ("image", "video"))]  # a video's frames follow images
    for t in state["turns"]:
        heads = []
        for m in order:
            for p in t.get(m + "s", []):
                name = Path(p).name
                if m == "video" and "video" not in modalities:
                    frames = load_video_frames(p, cfg, name)
                    inputs["image"].extend(frames)
                    heads.append(PLACEHOLDERS["image"] * len(frames))
                    continue
                inputs[m].append(Video(Path(p)) if m == "video" else load_media(m, Path(p).read_bytes(), cfg, name))
                heads.append(PLACEHOLDERS[m])
        messages.append({"role": t["role"], "content": "\n".join([*heads, t["text"]])})
    return ChatRequest(messages=messages, **media_fields(inputs), max_new_tokens=int(max_tokens),
                       temperature=float(temperature), top_p=float(top_p))


def _chat_view(state: dict[str, Any]) -> list[dict[str, str]]:
    view = []
    for t in state["turns"]:
        notes = [f"[{m.name}: {Path(p).name}]" for m in media.modalities() for p in t.get(m.name + "s", [])]
        view.append({"role": t["role"], "content": "\n".join([*notes, t["text"]]) if notes else t["text"]})
    return view


async def stream_reply(batcher: Batcher, generator: Generator, cfg: ServeConfig, state: dict[str, Any],
                       max_tokens: int, temperature: float, top_p: float) -> AsyncIterator[str]:
    """Yield the assistant's text so far while it streams; the last value is the final text."""
    req = await asyncio.to_thread(build_request, state, cfg, max_tokens, temperature, top_p, generator.modalities)
    await asyncio.to_thread(fit_context, generator, req, False)
    deltas: asyncio.Queue[str | None] = asyncio.Queue()
    future = batcher.enqueue(req, on_token=deltas.put_nowait)
    future.add_done_callback(lambda _: deltas.put_nowait(None))
    text = ""
    try:
        while (d := await deltas.get()) is not None:
            text += d
            yield text
        yield truncate_at_stop(future.result().text, req.stop, "")[0]
    finally:
        future.cancel()  # Clear pressed mid-answer: drop the request if its batch has not started


UPLOADS = ("image", "audio", "video", "thermal", "depth", "imu")  # the upload boxes, in page order


def upload_names() -> tuple[str, ...]:
    """The modalities with an upload box, in page order: UPLOADS, then every modality registered later."""
    return UPLOADS + tuple(m.name for m in media.modalities() if m.name not in UPLOADS)


def upload_components(gr: Any, modalities: set[str]) -> list[Any]:
    """One upload box per modality of `upload_names()` (elem_id `<modality>-input`), shown when the model takes it
    (video also for an image model: its frames); each hands the demo its file's path. A modality registered after
    the built-in ones gets a file box labelled with its `help`."""
    shown = {m: m in modalities for m in upload_names()} | {"video": bool({"video", "image"} & modalities)}
    later = [gr.File(type="filepath", label=media.get_modality(m).help or m, visible=shown[m], elem_id=f"{m}-input")
             for m in upload_names()[len(UPLOADS):]]
    video_label = "Video" if "video" in modalities else "Video (frames go to the image encoder)"
    return [
        gr.Image(type="filepath", label="Image", sources=["upload", "clipboard"], visible=shown["image"],
                 elem_id="image-input"),
        gr.Audio(type="filepath", label="Audio", sources=["upload"], visible=shown["audio"], elem_id="audio-input"),
        gr.Video(label=video_label, sources=["upload"], visible=shown["video"], elem_id="video-input"),
        gr.Image(type="filepath", label="Thermal image", image_mode="L", format="png", sources=["upload"],
                 visible=shown["thermal"], elem_id="thermal-input"),  # png: the grey levels reach the model unchanged
        gr.File(type="filepath", label="Depth map (8- or 16-bit PNG)", file_types=["image"], visible=shown["depth"],
                elem_id="depth-input"),
        gr.File(type="filepath", label="IMU trace (.npy or .csv, 6 channels)", file_types=[".npy", ".csv"],
                visible=shown["imu"], elem_id="imu-input"),
        *later,
    ]


def build_ui(batcher: Batcher, generator: Generator, cfg: ServeConfig) -> Any:
    gr = _import_gradio()
    names = upload_names()  # the upload boxes of this page, in order

    async def _answer(state: dict, max_tokens: int, temperature: float, top_p: float) -> AsyncIterator[tuple]:
        state["turns"].append({"role": "assistant", "text": ""})
        try:
            async for text in stream_reply(batcher, generator, cfg, {"turns": state["turns"][:-1]}, max_tokens,
                                           temperature, top_p):
                state["turns"][-1]["text"] = text
                yield _chat_view(state), state
        except (APIError, BatcherError) as e:
            state["turns"].pop()
            if state["turns"] and state["turns"][-1]["role"] == "user":
                state["turns"].pop()
            gr.Warning(e.message)
            yield _chat_view(state), state

    async def send(text: str, *args: Any) -> AsyncIterator[tuple]:
        uploads, (state, max_tokens, temperature, top_p) = args[:len(names)], args[len(names):]
        text = (text or "").strip()
        if not text:
            gr.Warning("type a message first")
            yield gr.update(), _chat_view(state), state
            return
        turn: dict[str, Any] = {"role": "user", "text": text, **{m + "s": [] for m in names}}
        for m, path in zip(names, uploads):
            if path and path not in state["attached"]:  # each upload joins the conversation once
                turn[m + "s"].append(path)
                state["attached"].append(path)
        state["turns"].append(turn)
        async for view, st in _answer(state, max_tokens, temperature, top_p):
            yield "", view, st

    async def regenerate(state: dict, max_tokens: int, temperature: float, top_p: float) -> AsyncIterator[tuple]:
        if state["turns"] and state["turns"][-1]["role"] == "assistant":
            state["turns"].pop()
        if not state["turns"]:
            yield _chat_view(state), state
            return
        async for out in _answer(state, max_tokens, temperature, top_p):
            yield out

    def clear() -> tuple:
        return [], _new_state(), *[None] * len(names), ""

    with gr.Blocks(title=f"polyvlm: {generator.name}", analytics_enabled=False) as demo:
        gr.Markdown(f"### polyvlm demo: `{generator.name}`\nUpload media, then ask about it. Each upload joins the "
                    "conversation with your next message.")
        state = gr.State(_new_state())
        with gr.Row():
            with gr.Column(scale=1):
                uploads = upload_components(gr, generator.modalities)
                max_tokens = gr.Slider(1, max(1, min(1024, generator.max_context - 1)), value=min(128, generator.max_context - 1),
                                       step=1, label="Maximum new tokens", elem_id="max-tokens")
                temperature = gr.Slider(0.0, 2.0, value=0.7, step=0.05, label="Temperature (0 = greedy)", elem_id="temperature")
                top_p = gr.Slider(0.05, 1.0, value=0.9, step=0.05, label="Top-p", elem_id="top-p")
            with gr.Column(scale=2):
                chatbot = gr.Chatbot(label="Conversation", elem_id="chatbot", height=480)
                box = gr.Textbox(placeholder="Ask about the media…", show_label=False, elem_id="prompt")
                with gr.Row():
                    send_btn = gr.Button("Send", variant="primary", elem_id="send")
                    regen_btn = gr.Button("Regenerate", elem_id="regenerate")
                    clear_btn = gr.Button("Clear", elem_id="clear")
        sliders = [max_tokens, temperature, top_p]
        running = [trigger(send, [box, *uploads, state, *sliders], [box, chatbot, state])
                   for trigger in (box.submit, send_btn.click)]
        running.append(regen_btn.click(regenerate, [state, *sliders], [chatbot, state]))
        # clearing stops an answer in flight, or its last update would bring the old conversation back
        clear_btn.click(clear, None, [chatbot, state, *uploads, box], cancels=running)
        chatbot.clear(_new_state, None, state, cancels=running)  # the chatbot's own trash button too
    return demo


def mount_ui(app: Any, batcher: Batcher, generator: Generator, cfg: ServeConfig) -> Any:
    """Mount the demo at /ui on `app` (login with the API key as password when one is set)."""
    gr = _import_gradio()
    demo = build_ui(batcher, generator, cfg)
    auth = (lambda _user, password: hmac.compare_digest(str(password), cfg.api_key)) if cfg.api_key else None
    return gr.mount_gradio_app(app, demo, path="/ui", auth=auth, ssr_mode=False,
                               max_file_size=cfg.max_body_bytes, footer_links=[])
