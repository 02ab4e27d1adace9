"""TextStreamer with the tiny SentencePiece tokenizer (byte fallback included; no MindSpore)."""

from __future__ import annotations

import numpy as np
from iflytekspark.inference.streamer import TextStreamer
from iflytekspark.tokenizer import Tokenizer

TEXT = "好 ka 🙂 x\nnext"


def feed(streamer: TextStreamer, rows):
    """Feed rows of ids step by step (shorter rows inactive at the end); texts per step."""
    steps = max(len(r) for r in rows)
    out = []
    for t in range(steps):
        tokens = np.array([r[t] if t < len(r) else 0 for r in rows])
        active = np.array([t < len(r) for r in rows])
        out.append(streamer.put(tokens, active))
    return out


def test_holds_bytes_until_a_character_is_complete(tiny_tokenizer):
    tok = Tokenizer(tiny_tokenizer)
    ids = tok.encode(TEXT)
    pieces = [tok.id_to_piece(i) for i in ids]
    assert sum(p.startswith("<0x") for p in pieces) == 4  # the emoji is four byte pieces
    seen = []
    streamer = TextStreamer(tok, 1, sink=lambda row, text: seen.append(text))
    texts = [step[0] for step in feed(streamer, [ids])]
    assert "".join(texts) == TEXT == "".join(seen)
    assert "\ufffd" not in "".join(texts)
    first_byte = pieces.index("<0xF0>")
    assert texts[first_byte : first_byte + 3] == ["", "", ""]
    assert texts[first_byte + 3].endswith("🙂")


def test_rows_are_independent_and_nothing_after_end(tiny_tokenizer):
    tok = Tokenizer(tiny_tokenizer)
    a, b = tok.encode("ka ri"), tok.encode("🙂 to")
    streamer = TextStreamer(tok, 2, eos_id=tok.eos_id)
    steps = feed(streamer, [a + [tok.eos_id] + tok.encode(" after"), b])
    assert "".join(s[0] for s in steps) == "ka ri"
    assert "".join(s[1] for s in steps) == "🙂 to"
    assert streamer.end() == ["", ""]


def test_unfinished_bytes_come_out_at_the_end(tiny_tokenizer):
    tok = Tokenizer(tiny_tokenizer)
    ids = tok.encode("ka 🙂")[:-1]  # cut inside the emoji
    streamer = TextStreamer(tok, 1)
    assert "".join(s[0] for s in feed(streamer, [ids])) == "ka "
    assert streamer.end() == [tok.decode(ids)[len("ka ") :]]
