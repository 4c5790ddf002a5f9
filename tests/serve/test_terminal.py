"""The interactive terminal chat: driven through streams, and once through a real pseudo-terminal."""

from __future__ import annotations

import io
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from serve_fakes import FakeGenerator
from serve_helpers import png_bytes, wav_bytes

from polyvlm.serve.terminal import run_chat

HERE = Path(__file__).parent


def _run(lines: list[str], gen: FakeGenerator | None = None) -> tuple[str, FakeGenerator]:
    gen = gen or FakeGenerator(batch_sleep=0.0)
    out = io.StringIO()
    assert run_chat(gen, io.StringIO("".join(line + "\n" for line in lines)), out) == 0
    return out.getvalue(), gen


def test_multi_turn_with_image_and_audio(tmp_path):
    (tmp_path / "red.png").write_bytes(png_bytes((230, 10, 10), (20, 10)))
    (tmp_path / "tone.wav").write_bytes(wav_bytes(0.25, 8000))
    text, gen = _run([f"/image {tmp_path}/red.png", "what colour?", f"/audio {tmp_path}/tone.wav", "and this?", "/quit",
                      "never read"])
    assert "[attached image red.png" in text and "[attached audio tone.wav" in text
    assert "echo: what colour? | images=1 audios=0 turns=1 | red-20x10" in text
    assert "echo: and this? | images=1 audios=1 turns=3 | red-20x10 audio-0.25s" in text
    last = gen.requests[-1]
    assert [m["role"] for m in last.messages] == ["user", "assistant", "user"]
    assert last.messages[0]["content"] == "<image>\nwhat colour?" and last.messages[2]["content"] == "<audio>\nand this?"
    assert "never read" not in " ".join(m["content"] for r in gen.requests for m in r.messages)


def test_reset_and_errors(tmp_path):
    text, gen = _run(["hello", "/reset", "again", "/image /no/such.png", "/audio", "/bogus", "/help", ""],
                     FakeGenerator(batch_sleep=0.0, modalities={"image"}))
    assert "[conversation cleared]" in text
    assert "echo: again | images=0 audios=0 turns=1" in text  # history forgotten
    assert "error: /no/such.png: no such file" in text
    assert "does not accept audio" in text and "unknown command /bogus" in text and "/reset" in text
    assert len(gen.requests) == 2  # end of input leaves cleanly


def test_bad_media_file_and_context_overflow(tmp_path):
    (tmp_path / "fake.png").write_bytes(b"not an image")
    (tmp_path / "red.png").write_bytes(png_bytes())
    gen = FakeGenerator(batch_sleep=0.0, max_context=30)
    text, _ = _run([f"/image {tmp_path}/fake.png", *[f"/image {tmp_path}/red.png"] * 3, "too big", "ok"], gen)
    assert "not a readable image" in text
    assert "maximum context length is 30" in text
    assert "3 attachment(s) dropped" in text
    assert len(gen.requests) == 1 and gen.requests[0].images == []  # the over-long turn never reached the model


def test_in_a_pseudo_terminal(tmp_path):
    (tmp_path / "blue.png").write_bytes(png_bytes((10, 10, 230), (8, 8)))
    script = (f"import sys; sys.path.insert(0, {str(HERE)!r})\n"
              "from serve_fakes import FakeGenerator\n"
              "from polyvlm.serve.terminal import run_chat\n"
              "sys.exit(run_chat(FakeGenerator(batch_sleep=0.0, token_sleep=0.01)))\n")
    pid_out, pid_in = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1]), "TERM": "dumb"}
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=pid_in, stdout=pid_in, stderr=subprocess.PIPE,
                            env=env, close_fds=True)
    os.close(pid_in)
    seen = b""

    def expect(marker: bytes, timeout: float = 20) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while marker not in seen:
            assert time.monotonic() < deadline, f"timed out waiting for {marker!r}; got {seen[-500:]!r}"
            if select.select([pid_out], [], [], 0.1)[0]:
                try:
                    seen += os.read(pid_out, 4096)
                except OSError:
                    break

    try:
        expect(b">>> ")
        os.write(pid_out, f"/image {tmp_path}/blue.png\r".encode())
        expect(b"[attached image blue.png")
        os.write(pid_out, b"describe it\r")
        expect(b"blue-8x8")
        expect(b">>> ")
        os.write(pid_out, b"/quit\r")
        assert proc.wait(20) == 0, proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(pid_out)
    assert b"echo: describe it | images=1" in seen


def test_ctrl_c_stops_the_answer_not_the_chat(tmp_path):
    (tmp_path / "red.png").write_bytes(png_bytes((230, 10, 10), (8, 8)))
    script = (f"import sys; sys.path.insert(0, {str(HERE)!r})\n"
              "from serve_fakes import FakeGenerator\n"
              "from polyvlm.serve.terminal import run_chat\n"
              "sys.exit(run_chat(FakeGenerator(batch_sleep=0.0, token_sleep=0.3)))\n")
    # as from a terminal: SIGINT at its default even if this process ignores it (a child inherits SIG_IGN, and
    # Python then raises no KeyboardInterrupt; an earlier test in the suite can leave it ignored)
    proc = subprocess.Popen([sys.executable, "-u", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(HERE.parents[1])},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.set_blocking(proc.stdout.fileno(), False)
    seen, pos = b"", 0

    def expect(marker: bytes, timeout: float = 20) -> None:
        """Wait for `marker` in the output after the previous match."""
        nonlocal seen, pos
        deadline = time.monotonic() + timeout
        while marker not in seen[pos:]:
            assert time.monotonic() < deadline, f"timed out waiting for {marker!r}; got {seen[-500:]!r}"
            select.select([proc.stdout], [], [], 0.1)
            seen += proc.stdout.read() or b""
        pos = seen.index(marker, pos) + len(marker)

    try:
        expect(b">>> ")
        # ~40 words at 0.3 s each: the answer streams for ~12 s, so a stalled test process still interrupts it
        story = " ".join(["what is this long story"] * 8)
        proc.stdin.write(f"/image {tmp_path}/red.png\n{story}\n".encode())
        proc.stdin.flush()
        expect(b"echo: what")  # the answer has started streaming
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        expect(b"[interrupted")
        expect(b">>> ")
        proc.stdin.write(b"again\n")
        proc.stdin.flush()
        expect(b"echo: again | images=1 audios=0 turns=1")  # the interrupted turn is gone, its image stayed
        expect(b">>> ")
        proc.send_signal(signal.SIGINT)  # at the prompt: leave
        assert proc.wait(20) == 130, proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert b"Traceback" not in proc.stderr.read()
