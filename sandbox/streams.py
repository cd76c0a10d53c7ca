"""The program's output: JSON lines split and capped, stderr kept as a bounded tail."""

from __future__ import annotations

from collections.abc import Callable

from sandbox.policy import MAX_LINE_BYTES

# --------------------------------------------------------------------------
# Output: line splitting, caps, tails


class StdoutLines:
    """Split stdout into lines for the callback; cap each line and the total."""

    def __init__(self, on_line: Callable[[str], None], max_total: int) -> None:
        self._on_line = on_line
        self._max_total = max_total
        self._line = bytearray()
        self.total = 0
        self.muted = False

    @property
    def over_limit(self) -> bool:
        return self.total > self._max_total

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        if self.muted:
            return
        start = 0
        while (newline := data.find(b"\n", start)) != -1:
            self._keep(data[start:newline])
            self._emit()
            start = newline + 1
        self._keep(data[start:])

    def _keep(self, chunk: bytes) -> None:
        room = MAX_LINE_BYTES - len(self._line)
        if room > 0:
            self._line += chunk[:room]

    def _emit(self) -> None:
        text = self._line.decode("utf-8", errors="replace").removesuffix("\r")
        self._line.clear()
        self._on_line(text)

    def flush(self) -> None:
        if self._line and not self.muted:
            self._emit()


class Tail:
    """Keep only the last `limit` bytes of a stream."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._data = bytearray()
        self.truncated = False

    def feed(self, data: bytes) -> None:
        self._data += data
        if len(self._data) > 2 * self._limit:
            del self._data[: -self._limit]
            self.truncated = True

    def text(self) -> str:
        data = bytes(self._data[-self._limit :])
        if self.truncated or len(self._data) > self._limit:
            # Start at a line boundary: a cut line (or UTF-8 sequence) only confuses.
            data = b"[... earlier output cut ...]\n" + data[data.find(b"\n") + 1 :]
        return data.decode("utf-8", errors="replace")
