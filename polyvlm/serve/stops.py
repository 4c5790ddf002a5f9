"""Stop strings on streamed text: never send a stop string (or the start of one) to the client."""

from __future__ import annotations


def truncate_at_stop(text: str, stops: list[str], finish_reason: str) -> tuple[str, str]:
    """Cut `text` at the earliest stop string; the finish reason becomes "stop" when one is found."""
    cuts = [i for i in (text.find(s) for s in stops) if i >= 0]
    return (text[: min(cuts)], "stop") if cuts else (text, finish_reason)


class StopStream:
    """Feed text deltas with `push`; it returns what is safe to send now.

    Text that could be the beginning of a stop string is held back until the next delta decides it.
    `finish(final_text)` returns whatever the generator's final text adds to what was sent.
    """

    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self.buf = ""
        self.sent = 0
        self.stopped = False

    def push(self, delta: str) -> str:
        if self.stopped:
            return ""
        self.buf += delta
        cut, reason = truncate_at_stop(self.buf, self.stops, "")
        if reason == "stop":
            self.stopped = True
            return self._release(len(cut))
        hold = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(self.buf)), 0, -1):
                if self.buf.endswith(s[:k]):
                    hold = max(hold, k)
                    break
        return self._release(len(self.buf) - hold)

    def _release(self, upto: int) -> str:
        if upto <= self.sent:
            return ""
        out, self.sent = self.buf[self.sent : upto], upto
        return out

    def finish(self, final_text: str) -> str:
        if self.stopped:
            return ""
        final, reason = truncate_at_stop(final_text, self.stops, "")
        self.stopped = reason == "stop"
        sent = self.buf[: self.sent]
        return final[len(sent) :] if final.startswith(sent) else ""
