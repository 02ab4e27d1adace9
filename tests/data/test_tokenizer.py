"""The SentencePiece tokenizer: special ids, <ret> and tab handling, byte fallback, bad directories."""

from __future__ import annotations

import shutil

import pytest
from iflytekspark.testing import SPECIAL_IDS, build_tokenizer
from iflytekspark.tokenizer import Tokenizer, TokenizerError


@pytest.fixture(scope="module")
def tok(tiny_tokenizer) -> Tokenizer:
    return Tokenizer(tiny_tokenizer)


def test_special_pieces_have_the_released_ids(tok):
    assert {p: tok.piece_to_id(p) for p in SPECIAL_IDS} == SPECIAL_IDS
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id, tok.ret_id) == (0, 1, 5, 3, 4)
    assert 200 <= tok.vocab_size <= 500


def test_vocab_file_lines_are_the_ids(tok):
    pieces = [line.split("\t")[0] for line in tok.vocab_file.read_text(encoding="utf-8").splitlines()]
    assert pieces[:8] == list(SPECIAL_IDS)
    assert all(tok.id_to_piece(i) == p for i, p in enumerate(pieces))


def test_encode_writes_newline_as_ret_and_tab_as_spaces_without_bos_eos(tok):
    ids = tok.encode("a\tb\nc")
    assert ids.count(tok.ret_id) == 1
    assert tok.bos_id not in ids and tok.eos_id not in ids
    assert tok.encode("a\tb") == tok.encode("a    b")
    assert tok.encode("x\ny") == tok.encode("x<ret>y")


def test_special_pieces_in_text_are_single_ids(tok):
    ids = tok.encode("<User> hi<end><Bot> ok<end>")
    assert ids.count(5) == 2 and ids.count(6) == 1 and ids.count(7) == 1


def test_decode_maps_ret_back_unless_kept(tok):
    text = "Line one\nline 天气 two\tend<end>"
    ids = tok.encode(text)
    assert tok.decode(ids) == text.replace("\t", "    ")
    assert tok.decode(ids, keep_ret=True) == text.replace("\t", "    ").replace("\n", "<ret>")


def test_unseen_characters_round_trip_through_byte_fallback(tok):
    text = "é😀 Ωmega"
    ids = tok.encode(text)
    assert tok.unk_id not in ids
    assert tok.decode(ids) == text


def test_directory_without_model_is_a_clear_error(tmp_path, tiny_tokenizer):
    with pytest.raises(TokenizerError, match=r"no \*\.model file"):
        Tokenizer(tmp_path)
    with pytest.raises(TokenizerError, match="not a directory"):
        Tokenizer(tmp_path / "missing")
    shutil.copy(tiny_tokenizer / "tokenizer.model", tmp_path / "tokenizer.model")
    with pytest.raises(TokenizerError, match=r"no \*\.vocab file"):
        Tokenizer(tmp_path)
    (tmp_path / "tokenizer.vocab").write_text("<pad>\t0\n<unk>\t0\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match="do not belong together"):
        Tokenizer(tmp_path)
    shutil.copy(tiny_tokenizer / "tokenizer.model", tmp_path / "other.model")
    with pytest.raises(TokenizerError, match="2 .*expected exactly one"):
        Tokenizer(tmp_path)


def test_test_tokenizer_is_deterministic(tmp_path, tiny_tokenizer):
    again, first = Tokenizer(build_tokenizer(tmp_path)), Tokenizer(tiny_tokenizer)
    assert [again.id_to_piece(i) for i in range(len(again))] == [
        first.id_to_piece(i) for i in range(len(first))
    ]


def test_a_model_file_is_a_tokenizer_with_or_without_its_vocab(tmp_path, tiny_tokenizer):
    whole = Tokenizer(tiny_tokenizer)
    given = Tokenizer(tiny_tokenizer / "tokenizer.model")  # the .vocab beside it is found and checked
    assert given.vocab_file == tiny_tokenizer / "tokenizer.vocab" and len(given) == len(whole)
    shutil.copy(tiny_tokenizer / "tokenizer.model", tmp_path / "spark.model")
    alone = Tokenizer(tmp_path / "spark.model")
    assert alone.vocab_file is None and alone.encode("a\nb") == whole.encode("a\nb")
    (tmp_path / "spark.vocab").write_text("<pad>\t0\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match="do not belong together"):
        Tokenizer(tmp_path / "spark.model")
    with pytest.raises(TokenizerError, match="not a SentencePiece .model file"):
        Tokenizer(tmp_path / "spark.vocab")
