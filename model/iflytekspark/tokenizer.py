"""The iFlytekSpark tokenizer: SentencePiece plus the model's newline and tab conventions.

A tokenizer is a directory holding one ``*.model`` and one ``*.vocab`` (line index = id, piece before the
tab), or a ``*.model`` file itself (its ``<stem>.vocab`` beside it is checked when present). Encoding
writes "\\n" as the piece ``<ret>`` and "\\t" as four spaces and adds no BOS/EOS; decoding maps
``<ret>`` back to "\\n" unless asked to keep it. Imports only sentencepiece (cheap in worker processes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Optional, Tuple, Union

import sentencepiece as spm

from .errors import IFlytekSparkError

RET, END, USER, BOT, PAD, UNK = "<ret>", "<end>", "<User>", "<Bot>", "<pad>", "<unk>"
SPECIAL_PIECES = (PAD, UNK, RET, END, USER, BOT)


class TokenizerError(IFlytekSparkError, ValueError):
    """The tokenizer files are missing, ambiguous or inconsistent."""


def find_tokenizer_files(path: Union[str, Path]) -> Tuple[Path, Optional[Path]]:
    """The (model, vocab) files of a tokenizer: a directory with exactly one ``*.model`` and one
    ``*.vocab``, or a ``*.model`` file (vocab: ``<stem>.vocab`` beside it, None when there is none)."""
    path = Path(path)
    if path.is_file():
        if path.suffix != ".model":
            raise TokenizerError(f"tokenizer {path}: not a SentencePiece .model file (nor a directory)")
        vocab = path.with_suffix(".vocab")
        return path, vocab if vocab.is_file() else None
    if not path.is_dir():
        raise TokenizerError(
            f"tokenizer {path}: not a directory or a .model file (expected a folder holding *.model and "
            "*.vocab, or the *.model file itself)"
        )
    found = []
    for ext in ("model", "vocab"):
        files = sorted(path.glob(f"*.{ext}"))
        if len(files) != 1:
            what = "no" if not files else f"{len(files)} ({', '.join(f.name for f in files)})"
            raise TokenizerError(f"tokenizer {path}: {what} *.{ext} file(s); expected exactly one")
        found.append(files[0])
    return found[0], found[1]


class Tokenizer:
    """SentencePiece tokenizer with the special pieces of iFlytekSpark (ids read from the model)."""

    def __init__(self, path: Union[str, Path]):
        self.model_file, self.vocab_file = find_tokenizer_files(path)
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.Load(str(self.model_file))
        except (OSError, RuntimeError) as exc:
            raise TokenizerError(f"tokenizer {self.model_file}: not a SentencePiece model ({exc})") from None
        if self.vocab_file is not None:
            with open(self.vocab_file, encoding="utf-8") as f:
                vocab = [line.split("\t", 1)[0] for line in f if line.strip("\n")]
            if len(vocab) != self.sp.get_piece_size():
                raise TokenizerError(
                    f"tokenizer {self.vocab_file}: {len(vocab)} pieces, but {self.model_file.name} has "
                    f"{self.sp.get_piece_size()}; the two files do not belong together"
                )
        missing = [p for p in SPECIAL_PIECES if self.sp.piece_to_id(p) == self.sp.unk_id() and p != UNK]
        if missing:
            raise TokenizerError(
                f"tokenizer {self.model_file}: special piece(s) missing: {', '.join(missing)}"
            )
        self.pad_id = self.sp.piece_to_id(PAD)
        self.unk_id = self.sp.unk_id()
        self.eos_id = self.sp.piece_to_id(END)
        self.ret_id = self.sp.piece_to_id(RET)
        self.bos_id = self.sp.bos_id()

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str) -> List[int]:
        """Ids of ``text`` ("\\n" -> ``<ret>``, "\\t" -> four spaces), no BOS or EOS."""
        return self.sp.encode(text.replace("\n", RET).replace("\t", "    "))

    def encode_batch(self, texts: Iterable[str]) -> List[List[int]]:
        return self.sp.encode([t.replace("\n", RET).replace("\t", "    ") for t in texts])

    def decode(self, ids: Iterable[int], keep_ret: bool = False) -> str:
        """Text of ``ids``; ``<ret>`` becomes "\\n" unless ``keep_ret`` (the reference's output)."""
        text = self.sp.decode([int(i) for i in ids])
        return text if keep_ret else text.replace(RET, "\n")

    def id_to_piece(self, token_id: int) -> str:
        return self.sp.id_to_piece(int(token_id))

    def piece_to_id(self, piece: str) -> int:
        return self.sp.piece_to_id(piece)
