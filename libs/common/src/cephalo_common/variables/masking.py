"""Masking sensitive values in streamed log output.

Every occurrence of every sensitive value longer than 3 characters becomes `********`
(Octopus masks nothing shorter: a 3-character mask would hide too much ordinary text).
Overlapping occurrences (of one value or of several) are covered by a single mask, which
is what "longest first" amounts to, and never leaves a fragment of either visible.

Streaming: a value can arrive split across chunks, so `feed` emits only text that cannot
be the start of a value still arriving and holds back the last `longest - 1` characters
until the next chunk or `flush()`. A mask already emitted for an occurrence that runs into
the held-back text is remembered, so it is not emitted twice and nothing after it leaks.
"""

from __future__ import annotations

from collections.abc import Iterable

MASK = "********"
MIN_MASKED_LENGTH = 4


class SensitiveMasker:
    def __init__(self, values: Iterable[str] = (), mask: str = MASK) -> None:
        self.mask = mask
        self._values: list[str] = []
        self._pending = ""
        self._covered = 0
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        """Mask these too from now on (e.g. a sensitive output variable just captured)."""
        known = set(self._values)
        for value in values:
            if len(value) >= MIN_MASKED_LENGTH and value not in known:
                known.add(value)
                self._values.append(value)
        self._values.sort(key=len, reverse=True)

    @property
    def hold_back(self) -> int:
        return max((len(value) for value in self._values), default=1) - 1

    def mask_text(self, text: str) -> str:
        """Mask a complete text (not a stream)."""
        masked, _, _ = self._mask(text, len(text), 0)
        return masked

    def feed(self, chunk: str) -> str:
        """The part of the stream that is now safe to emit, already masked."""
        data = self._pending + chunk
        cut = max(0, len(data) - self.hold_back)
        masked, rest, covered = self._mask(data, cut, self._covered)
        self._pending, self._covered = rest, covered
        return masked

    def flush(self) -> str:
        """Everything still held back, masked; the masker is then empty."""
        data = self._pending
        masked, _, _ = self._mask(data, len(data), self._covered)
        self._pending, self._covered = "", 0
        return masked

    def _mask(self, data: str, cut: int, covered: int) -> tuple[str, str, int]:
        """Mask `data[:cut]`; return it, the rest, and how much of the rest is already masked."""
        runs = _merge(_occurrences(data, self._values), covered)
        out: list[str] = []
        position = 0
        carried = 0
        for start, end in runs:
            masked_before = covered > 0 and start == 0
            if start >= cut and not masked_before:
                break
            out.append(data[position:start])
            if not masked_before:
                out.append(self.mask)
            position = min(end, cut)
            carried = max(0, end - cut)
        out.append(data[position:cut])
        return "".join(out), data[cut:], carried


def _occurrences(data: str, values: list[str]) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    for value in values:
        start = data.find(value)
        while start >= 0:
            found.append((start, start + len(value)))
            start = data.find(value, start + 1)
    return found


def _merge(intervals: list[tuple[int, int]], covered: int) -> list[tuple[int, int]]:
    """Overlapping occurrences become one run; `[0, covered)` was masked in an earlier chunk."""
    if covered:
        intervals.append((0, covered))
    runs: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if runs and start < runs[-1][1]:
            runs[-1] = (runs[-1][0], max(runs[-1][1], end))
        else:
            runs.append((start, end))
    return runs


def mask(text: str, values: Iterable[str]) -> str:
    return SensitiveMasker(values).mask_text(text)
