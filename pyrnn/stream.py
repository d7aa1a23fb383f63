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


class Utf8Stream:
    """An incremental UTF-8 decoder that never yields half a character."""

    def __init__(self) -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        """The characters that `data` completes (possibly ""); an incomplete tail is kept for later."""
        return self._dec.decode(data, final=False)

    def flush(self) -> str:
        """End of stream: whatever is held, with an unfinished character as U+FFFD; the decoder is reset."""
        out = self._dec.decode(b"", final=True)
        self._dec.reset()
        return out

    @property
    def pending(self) -> bytes:
        """Bytes held back because they may still start a valid character."""
        return self._dec.getstate()[0]
