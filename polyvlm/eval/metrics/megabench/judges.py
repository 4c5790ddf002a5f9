"""MEGA-Bench's judged field metrics through polyvlm's `--judge` client: gpt_4o_as_judge (lmms_eval/tasks/megabench/
metrics/scoring/vlm_as_judge.py: OpenAIVLMJudger prompt and images, VLMJudgeScore score parsing) and
ascii_art_gpt4o_judge (scoring/ascii_art_vlm_judge.py, with scoring/common/conversions.py ascii_text_to_image)."""

from __future__ import annotations

import base64
import io
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from polyvlm.eval.metrics.megabench import register, requires

MAX_SIDE = 1000  # OpenAIVLMJudger(resize=True, max_side=1000)
ASCII_PROMPT = ('Determine if the following two ASCII art images depict the same object. Your answer should be '
                'either "yes" or "no", but without the quotation marks.')
MONOSPACE_FONTS = ("Courier New", "DejaVu Sans Mono", "Consolas", "SF Mono")
_SCORE = re.compile(r"\*\*Score\*\*\s*:\s*(\d+)")
_EXPLANATION = re.compile(r"\*\*Score explanation\*\*\s*:\s*(.*)", re.DOTALL)


class JudgeUnavailable(RuntimeError):
    """A judged MEGA-Bench metric was asked for a score with no judge to ask."""


@dataclass
class Judge:
    """What the judged metrics need: `ask(text, images)` -> the judge's reply (images are data: URIs sent before the
    text, as the official request puts them), `open_media(path)` -> the bytes of a `./data/...` file."""

    ask: Callable[[str, list[str]], str]
    open_media: Callable[[str], bytes]


def _rgb(image: Any) -> Any:
    """OpenAIVLMJudger._rgba_to_rgb for RGBA pictures (composited on white); others unchanged."""
    from PIL import Image

    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image


def _data_uri(image: Any, image_format: str, mime: str) -> str:
    """Resized to MAX_SIDE when larger (each side int(side x scale)), saved as RGB in `image_format`, base64."""
    image = _rgb(image)
    if max(image.size) > MAX_SIDE:
        scale = MAX_SIDE / max(image.size)
        image = image.resize((int(image.size[0] * scale), int(image.size[1] * scale)))
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format=image_format)
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('utf-8')}"


def encode_file(path: str, data: bytes) -> str:
    """OpenAIVLMJudger.encode_image: the mime type guessed from the name (image/jpeg when unknown), the format its
    subtype upper-cased."""
    from PIL import Image

    mime = mimetypes.guess_type(path)[0] or "image/jpeg"
    return _data_uri(Image.open(io.BytesIO(data)), mime.split("/")[-1].upper(), mime)


def judge_prompt(config: dict[str, Any], reference: dict[str, Any], response: Any, question: str,
                 context: Any) -> str:
    """OpenAIVLMJudger.prepare_eval_prompt's text: eval_criteria_prompt formatted with template_mapping
    (model_output, example_question, answers.<key>, eval_context.<key>)."""
    values: dict[str, Any] = {}
    for key, source in config["template_mapping"].items():
        head, _, name = source.partition(".")
        if source == "model_output":
            values[key] = response
        elif source == "example_question":
            values[key] = question
        elif head == "answers":
            values[key] = reference[name]
        elif head == "eval_context":
            values[key] = context[name]
    return config["eval_criteria_prompt"].format(**values)


def parse_judge_score(reply: str) -> tuple[float, str]:
    """VLMJudgeScore.parse_results: `**Score**: N` -> N / 10, else 0 ("Score is NULL")."""
    found = _SCORE.search(reply)
    if found is None:
        return 0, f"Score is NULL: {reply};"
    explanation = _EXPLANATION.search(reply)
    return int(found.group(1)) / 10.0, \
        f"Score: {int(found.group(1))}; Explanation: {explanation.group(1).strip() if explanation else ''}"


@register("gpt_4o_as_judge", call="judge")
def gpt_4o_as_judge(response: Any, correct_answer: dict[str, Any], images: list[str], query_text: str,
                    context: Any, judge: Judge | None, config: dict[str, Any] | None) -> tuple[float, str]:
    """The judge sees the query's pictures (when judge_model_type is "with image") then the criteria prompt."""
    if judge is None:
        raise JudgeUnavailable("gpt_4o_as_judge needs --judge")
    if config is None:
        raise ValueError("gpt_4o_as_judge needs the task's gpt4o_eval_configs")
    pictures = [encode_file(p, judge.open_media(p)) for p in images] \
        if config["judge_model_type"] == "with image" else []
    return parse_judge_score(judge.ask(judge_prompt(config, correct_answer, response, query_text, context), pictures))


def ascii_text_to_image(text: str, width: int, height: int, font_size: int = 20, padding: int = 10,
                        line_spacing: int = 1) -> Any:
    """conversions.ascii_text_to_image: the lines drawn black on white in the first monospace font found
    (matplotlib's findfont without fallback; none -> ValueError), canvas int(longest x 0.6 x size + 2 pad) by
    int(lines x size + 2 pad), resized to width x height with LANCZOS."""
    from PIL import Image, ImageDraw, ImageFont

    font_manager = requires("matplotlib.font_manager", "ascii_art_gpt4o_judge")
    files = []
    for name in MONOSPACE_FONTS:
        try:
            files.append(font_manager.findfont(name, fallback_to_default=False))
        except ValueError:
            continue
    lines = text.splitlines()
    image = Image.new("RGB", (int(max(len(line) for line in lines) * font_size * 0.6 + 2 * padding),
                              int(len(lines) * font_size * line_spacing + 2 * padding)), color="white")
    font = None
    for path in files:
        try:
            font = ImageFont.truetype(path, font_size)
            break
        except OSError:
            continue
    if font is None:
        raise ValueError("Cannot properly render ASCII art: missing monospace font.")
    draw, y = ImageDraw.Draw(image), padding
    for line in lines:
        draw.text((padding, y), line, font=font, fill="black")
        y += font_size * line_spacing
    return image.resize((width, height), Image.Resampling.LANCZOS)


@register("ascii_art_gpt4o_judge", call="judge")
def ascii_art_gpt4o_judge(response: Any, correct_answer: Any, judge: Judge | None) -> int:
    """AsciiArtVLMJudgeScore.match (evaluator.py calls it as a pair metric: the field's reply and the answer as a
    string): both rendered at 224 x 224, sent as JPEG before the fixed question; 1 when "yes" is in the reply."""
    if not isinstance(response, str) or not isinstance(correct_answer, str) or not response:
        return 0
    if judge is None:
        raise JudgeUnavailable("ascii_art_gpt4o_judge needs --judge")
    pictures = [_data_uri(ascii_text_to_image(t, 224, 224), "JPEG", "image/jpeg") for t in (response, correct_answer)]
    return 1 if "yes" in judge.ask(ASCII_PROMPT, pictures).lower() else 0
