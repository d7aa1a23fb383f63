"""Streaming UTF-8: token bytes in, whole characters out.

    dec = Utf8Stream()
    for piece in (b"I \xf0\x9f", b"\x98\x80 it"):   # a token boundary splits 😀
        print(dec.feed(piece), end="")               # "I ", then "😀 it"
    print(dec.flush())                               # what an unfinished character leaves: "\ufffd" or ""

A token may end in the middle of a multi-byte character, so bytes that may still become a valid
character are held back until the next piece decides. Bytes that can never be valid (a stray
continuation byte, an overlong form, a surrogate, a truncated sequence followed by a new start
byte) become U+FFFD as soon as that is certain: one per maximal invalid subpart, the Unicode
recommendation that Python's own decoder follows. flush() ends the stream: held bytes that never
completed become U+FFFD.
"""

from __future__ import annotations

import codecs

# The allowed range of the byte after each lead byte (Unicode Table 3-7); later bytes are 80..BF.
_SECOND = {**{b: (0x80, 0xBF) for b in range(0xC2, 0xF5)}, 0xE0: (0xA0, 0xBF), 0xED: (0x80, 0x9F),
           0xF0: (0x90, 0xBF), 0xF4: (0x80, 0x8F)}


def _may_complete(held: bytes) -> bool:
    """Whether held bytes (an unfinished sequence) can still become a valid character."""
    if not held:
        return True
    lo, hi = _SECOND.get(held[0], (1, 0))
    return len(held) == 1 or (lo <= held[1] <= hi and all(0x80 <= b <= 0xBF for b in held[2:]))


class Utf8Stream:
    """An incremental UTF-8 decoder that never yields half a character."""

    def __init__(self) -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        """The characters that `data` completes (possibly ""); an incomplete tail is kept for later."""
        out = self._dec.decode(data, final=False)
        if not _may_complete(self.pending):  # Python's decoder waits on e.g. ED A0 (a surrogate): we don't
            out += self._dec.decode(b"", final=True)
            self._dec.reset()
        return out

    def flush(self) -> str:
        """End of stream: whatever is held, with an unfinished character as U+FFFD; the decoder is reset."""
        out = self._dec.decode(b"", final=True)
        self._dec.reset()
        return out

    @property
    def pending(self) -> bytes:
        """Bytes held back because they may still start a valid character."""
        return self._dec.getstate()[0]
