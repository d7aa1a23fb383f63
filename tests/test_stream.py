"""Streaming UTF-8 (pyrnn/stream.py): whole characters only, U+FFFD only for certainly invalid bytes."""

from __future__ import annotations

import numpy as np
import pytest

from pyrnn.stream import Utf8Stream

TEXT = "Hi 😀 wörld — 日本語 🏳️‍🌈!"


def feed_all(pieces: list[bytes]) -> list[str]:
    dec = Utf8Stream()
    return [dec.feed(p) for p in pieces] + [dec.flush()]


@pytest.mark.parametrize("cut", range(1, 4))
def test_emoji_split_inside_the_character(cut: int) -> None:
    """😀 split after 1, 2 or 3 of its 4 bytes comes out whole, once, with the piece that completes it."""
    b = "a😀b".encode()
    out = feed_all([b[:1 + cut], b[1 + cut:]])
    assert out == ["a", "😀b", ""]


def test_every_byte_separately() -> None:
    """Fed one byte at a time, each piece is whole characters and the join is the text."""
    out = feed_all([bytes([x]) for x in TEXT.encode()])
    assert "".join(out) == TEXT
    assert all("\ufffd" not in piece for piece in out)


def test_random_splits_equal_one_shot_decoding() -> None:
    """Any split of any bytes (valid or not) gives what decoding all at once with errors='replace' gives."""
    rng = np.random.default_rng(0)
    samples = [TEXT.encode(), b"\xff\xfe abc \xe2\x82", b"\xf0\x9f\x98 \xed\xa0\x80 \xc0\x80 \xf4\x90\x80\x80 ok"]
    samples += [bytes(rng.integers(0, 256, 40, dtype=np.uint8)) for _ in range(30)]
    for data in samples:
        cuts = sorted(rng.choice(len(data) + 1, size=5, replace=True).tolist())
        pieces = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        assert "".join(feed_all(pieces)) == data.decode("utf-8", "replace"), data


def test_incomplete_prefix_is_held_not_replaced() -> None:
    """Bytes that may still become a character are held (no U+FFFD yet) and visible as pending."""
    dec = Utf8Stream()
    assert dec.feed(b"ok \xf0\x9f") == "ok "
    assert dec.pending == b"\xf0\x9f"
    assert dec.feed(b"\x98") == ""
    assert dec.feed(b"\x80") == "😀"
    assert dec.pending == b""


def test_certainly_invalid_bytes_are_replaced_at_once() -> None:
    """A stray continuation byte, 0xff, an overlong lead and a surrogate are replaced without waiting."""
    dec = Utf8Stream()
    assert dec.feed(b"\x80") == "\ufffd"
    assert dec.feed(b"\xff") == "\ufffd"
    assert dec.feed(b"\xc0") == "\ufffd"             # never a valid lead byte (overlong)
    assert dec.feed(b"\xed\xa0") == "\ufffd\ufffd"   # ED A0..: a UTF-16 surrogate, invalid in UTF-8
    assert dec.pending == b""


def test_truncated_sequence_then_new_character() -> None:
    """A multi-byte start interrupted by an ASCII byte becomes one U+FFFD, then the ASCII byte."""
    assert feed_all([b"\xe2\x82", b"A"]) == ["", "\ufffdA", ""]


def test_flush_replaces_an_unfinished_character_and_resets() -> None:
    """At end of stream an unfinished character becomes U+FFFD; the decoder is then fresh."""
    dec = Utf8Stream()
    assert dec.feed(b"x\xe6\x97") == "x"
    assert dec.flush() == "\ufffd"
    assert dec.feed("é".encode()) == "é"
    assert dec.flush() == ""


@pytest.mark.parametrize("data", [b"\xe0\x80", b"\xf0\x80", b"\xf4\x90", b"\xed\xbf", b"\xe2\x82\x41"[:2] + b"\xc3"])
def test_impossible_second_bytes_are_replaced_at_once(data: bytes) -> None:
    """Overlong (E0 80, F0 80), beyond U+10FFFF (F4 90) and surrogate (ED BF) starts are not held back."""
    dec = Utf8Stream()
    out = dec.feed(data)
    assert out == data.decode("utf-8", "replace")[:len(out)] and out.startswith("\ufffd")
    assert dec.pending in (b"", b"\xc3")
