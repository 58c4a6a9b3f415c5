"""Text -> token ids, with each family's special tokens, and batches of them.

    RoBERTa: <s> A </s></s> B </s>       BERT: [CLS] A [SEP] B [SEP]   (token types 0…0 1…1)

Built on the `tokenizers` library and the checkpoint's `tokenizer.json` (else `vocab.json` +
`merges.txt` for RoBERTa, `vocab.txt` for BERT). Padding or truncation baked into
`tokenizer.json` is switched off (MiniLM's pads everything to 128): we pad per batch.

P-tuning v1 templates (the paper's §3 lets prompts sit anywhere around the text). A template
is a whitespace-separated list of pieces; the family's first and last special tokens are
added around it:
    [P]  one virtual token        [P*4]  four virtual tokens
    {a}  the first text           {b}    the second text
    [SEP]  the family's pair separator (</s></s> or [SEP]; BERT token types switch to 1 after it)
    [MASK] the family's mask token (<mask> or [MASK]): where a cloze task's MLM head reads the answer
    anything else: literal text, tokenized as is; punctuation written against {a}, {b} or [MASK]
           ("[MASK].") follows it without a space
e.g. "[P*4] {a} [P*4] ? [SEP] {b} [P*12]" (20 virtual tokens), or the P-tuning paper's cloze form
"[P*3] {a}? [MASK], [P*3] {b}". The slots carry the id PROMPT_SLOT (-1); the model puts its
prompt vectors there. Without a template the prompts go in front of everything, as peft does,
and the model adds them itself. A template without slots only arranges the text (P-tuning v2
and full fine-tuning on a cloze task: "{a}? [MASK], {b}").
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer as Backend
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

from ..config import EncoderConfig
from ..errors import OptionError, TokenizerError  # noqa: F401 - TokenizerError re-exported: callers import it from here

PROMPT_SLOT = -1
SPECIALS = {"roberta": ("<s>", "</s>"), "bert": ("[CLS]", "[SEP]")}
MASKS = {"roberta": "<mask>", "bert": "[MASK]"}  # what a template's [MASK] becomes


@dataclass
class Encoded:
    ids: list[int]
    type_ids: list[int]
    truncated: bool = False


def _fallback_backend(folder: Path, family: str) -> tuple[Backend, str]:
    """Build the tokenizer from the older vocabulary files when there is no tokenizer.json."""
    try:
        return _vocabulary_backend(folder, family)
    except TokenizerError:
        raise
    except Exception as err:  # the Rust side raises a bare Exception; json a ValueError
        files = "vocab.json + merges.txt" if family == "roberta" else "vocab.txt (and tokenizer_config.json)"
        raise TokenizerError(f"{folder}: cannot read {files} ({str(err).splitlines()[0] if str(err) else err!r})") \
            from None


def _vocabulary_backend(folder: Path, family: str) -> tuple[Backend, str]:
    vocab_json, merges, vocab_txt = folder / "vocab.json", folder / "merges.txt", folder / "vocab.txt"
    if family == "roberta" and vocab_json.is_file() and merges.is_file():
        backend = Backend(models.BPE.from_file(str(vocab_json), str(merges)))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        backend.post_processor = processors.RobertaProcessing(("</s>", backend.token_to_id("</s>")),
                                                              ("<s>", backend.token_to_id("<s>")))
        return backend, f"{vocab_json} + {merges.name}"
    if family == "bert" and vocab_txt.is_file():
        config_file = folder / "tokenizer_config.json"
        lower = json.loads(config_file.read_text()).get("do_lower_case", True) if config_file.is_file() else True
        backend = Backend(models.WordPiece.from_file(str(vocab_txt), unk_token="[UNK]"))
        backend.normalizer = normalizers.BertNormalizer(lowercase=lower)
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        cls, sep = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
        backend.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
        return backend, str(vocab_txt)
    wanted = "vocab.json + merges.txt" if family == "roberta" else "vocab.txt"
    raise TokenizerError(f"{folder}: no tokenizer.json and no {wanted}; copy the tokenizer files of the checkpoint")


class Tokenizer:
    def __init__(self, backend: Backend, config: EncoderConfig, max_length: int, template: str | None = None,
                 num_virtual_tokens: int = 0, source: str = "tokenizer"):
        self.backend, self.family, self.max_length = backend, config.family, max_length
        backend.no_padding()
        backend.no_truncation()
        cls_token, sep_token = SPECIALS[self.family]
        self.cls_id, self.sep_id = backend.token_to_id(cls_token), backend.token_to_id(sep_token)
        if self.cls_id is None or self.sep_id is None:
            raise TokenizerError(f"{source}: has no {cls_token} / {sep_token} token; is it a {self.family} tokenizer?")
        if backend.get_vocab_size() > config.vocab_size:
            raise TokenizerError(f"{source}: {backend.get_vocab_size()} tokens, but the model's vocab_size "
                                 f"is {config.vocab_size}; tokenizer and weights belong to different models")
        self.pad_id = config.pad_token_id
        self.mask_token = MASKS[self.family]
        self.mask_id = backend.token_to_id(self.mask_token)  # None: a vocabulary without one
        # A template holds all the method's virtual tokens, or none (it then only arranges the text).
        self.template = parse_template(template, num_virtual_tokens if template_slots(template) else 0) \
            if template else None
        if self.template and "[MASK]" in self.template and self.mask_id is None:
            raise TokenizerError(f"{source}: has no {self.mask_token} token for the template's [MASK]")
        if self.template:  # its words as tokens ("Honestly," is two): room must be left for a token of each text
            texts = [p for p in self.template if p in ("{a}", "{b}")]
            fixed = 2 + sum(len(ids) for kind, ids in self._pieces("x", "x") if kind != "text")
            if self.max_length - fixed < len(texts):
                raise OptionError(f"--template {template!r}: its words, slots and special tokens take {fixed} "
                                  f"tokens of the {self.max_length} a row may have (--max-length, or what the "
                                  "model's positions leave): no room is left for the text")
        if not self.template:
            backend.enable_truncation(max_length, strategy="longest_first")  # as HF truncation=True

    @classmethod
    def from_folder(cls, folder: str | Path, config: EncoderConfig | None = None, reserved_positions: int = 0,
                    template: str | None = None, max_length: int | None = None) -> "Tokenizer":
        """`reserved_positions`: position-table entries the prompt method needs (v1: its virtual
        tokens), so truncation leaves room for them; `max_length` caps the text further."""
        folder = Path(folder)
        config = config or EncoderConfig.from_json(folder)
        path = folder / "tokenizer.json"
        if path.is_file():
            try:
                backend, source = Backend.from_file(str(path)), str(path)
            except Exception as err:  # the Rust side raises a bare Exception
                raise TokenizerError(f"{path}: cannot read ({err})") from None
        else:
            backend, source = _fallback_backend(folder, config.family)
        # A template's slots are part of the ids it makes; prompts the model prepends are not.
        # --max-length caps the text and its special tokens (and a template's words), as HF's tokenizer does
        # for peft: the virtual tokens come on top, whether prepended or in the template's slots.
        limit = config.max_tokens - reserved_positions + template_slots(template)
        return cls(backend, config, min(limit, max_length + template_slots(template)) if max_length else limit, template,
                   reserved_positions, source=source)

    def encode(self, text_a: str, text_b: str | None = None) -> Encoded:
        if self.template:
            return self._encode_template(text_a, text_b)
        enc = self.backend.encode(text_a, text_b)
        return Encoded(enc.ids, enc.type_ids, truncated=bool(enc.overflowing))

    def encode_batch(self, pairs: list[tuple[str, str | None]]) -> list[Encoded]:
        return [self.encode(a, b) for a, b in pairs]

    def _encode_template(self, text_a, text_b):
        pieces = self._pieces(text_a, text_b)
        budget = self.max_length - 2 - sum(len(ids) for kind, ids in pieces if kind != "text")
        texts_ = [p for p in pieces if p[0] == "text"]
        truncated = False
        while sum(len(p[1]) for p in texts_) > max(budget, 0):  # longest first, one token at a time
            longest = max(texts_, key=lambda p: len(p[1]))
            longest[1] = longest[1][:-1]
            truncated = True
        ids, type_ids, segment = [self.cls_id], [0], 0
        for kind, piece_ids in pieces:
            ids += piece_ids
            type_ids += [segment] * len(piece_ids)
            if kind == "sep" and self.family == "bert":
                segment = 1
        return Encoded(ids + [self.sep_id], type_ids + [segment], truncated)

    def _pieces(self, text_a, text_b) -> list[list]:
        """The template's pieces as [kind, ids]: "text" (the examples' texts), "literal", "sep", "mask", "slot"."""
        pieces = []
        texts = {"{a}": text_a, "{b}": text_b}
        sep = [self.sep_id, self.sep_id] if self.family == "roberta" else [self.sep_id]
        running = False  # words since <s> or [SEP]: RoBERTa's BPE marks a word after a space ("Ġwas")
        for piece in self.template:
            if piece in texts or piece not in ("[SEP]", "[MASK]") and not piece.startswith("[P"):
                text = texts[piece] if piece in texts else piece
                if text is None:
                    raise TokenizerError(f"template uses {piece} but the example has no second text")
                spaced = running and not isinstance(piece, Glued)  # "[MASK]." writes "<mask>.", not "<mask> ."
                if spaced and self.family == "roberta" and text[:1] not in ("", " "):
                    text = " " + text  # as in the sentence the template writes: "sat? <mask>, A cat"
                pieces.append(["text" if piece in texts else "literal",
                               self.backend.encode(text, add_special_tokens=False).ids])
                running = True
            elif piece == "[SEP]":
                pieces.append(["sep", sep])
                running = False
            elif piece == "[MASK]":
                pieces.append(["mask", [self.mask_id]])  # RoBERTa's <mask> takes the space before it
                running = True
            else:
                pieces.append(["slot", [PROMPT_SLOT] * int(piece[3:-1] if "*" in piece else 1)])
        return pieces


def template_slots(template: str | None) -> int:
    """How many virtual tokens a template's [P] and [P*k] pieces hold (0 for None)."""
    slots = 0
    for piece in (template or "").split():
        if piece.startswith("[P"):
            match = re.fullmatch(r"\[P(?:\*(\d+))?\]", piece)
            if not match:
                raise TokenizerError(f"template piece {piece!r}: a virtual token is [P], k of them [P*k] (the "
                                     "other bracketed pieces are [SEP] and [MASK])")
            slots += int(match.group(1) or 1)
    return slots


SLOTS = ("{a}", "{b}", "[SEP]", "[MASK]")  # pieces that stand alone (a literal holding one is refused)


class Glued(str):
    """Punctuation written against the slot before it ("[MASK]." "{a}?"): it follows without a space, as in
    PET's "It was <mask>." (RoBERTa's BPE tells "." from "Ġ."; BERT's pre-tokenizer splits both alike)."""


def _unglue(piece: str) -> list[str]:
    """"[MASK]." -> ["[MASK]", Glued(".")]; any other piece as it is."""
    for slot in ("{a}", "{b}", "[MASK]"):
        rest = piece[len(slot):]
        if piece.startswith(slot) and rest and all(unicodedata.category(c).startswith("P") for c in rest):
            return [slot, Glued(rest)]
    return [piece]


def check_template(template: str) -> list[str]:
    """The template's pieces, or a TokenizerError saying what is wrong: a slot glued to a word ("[MASK]word"
    would be read as a literal, and a second mask), {a}/{b} or [MASK] more than once, no {a}.
    Punctuation right after {a}, {b} or [MASK] is a piece of its own that follows without a space."""
    pieces = [unglued for piece in template.split() for unglued in _unglue(piece)]
    template_slots(template)  # a malformed [P…] piece
    for piece in pieces:
        if "<mask>" in piece:
            raise TokenizerError(f"template piece {piece!r}: write the mask as [MASK] (it becomes the model's own "
                                 "mask token)")
        glued = next((slot for slot in SLOTS if slot in piece and piece != slot), None)
        if glued is not None:
            raise TokenizerError(f"template piece {piece!r}: write {glued} as a piece of its own, with spaces "
                                 "around it" + ("" if glued == "[SEP]" else
                                                " (punctuation may follow it directly: '{a}? [MASK], {b}')"))
    for slot, most in (("[MASK]", 1), ("{a}", 1), ("{b}", 1)):
        if pieces.count(slot) > most:
            raise TokenizerError(f"template {template!r} has {slot} {pieces.count(slot)} times" +
                                 ("; an MLM head reads one" if slot == "[MASK]" else ""))
    if "{a}" not in pieces:
        raise TokenizerError(f"template {template!r} has no {{a}}")
    return pieces


def parse_template(template: str, num_virtual_tokens: int) -> list[str]:
    pieces = check_template(template)
    slots = template_slots(template)
    if slots != num_virtual_tokens:
        raise TokenizerError(f"template {template!r} has {slots} virtual tokens, the method {num_virtual_tokens}")
    return pieces


def collate(encoded: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a list of encodings to the longest: ids, attention mask, token types."""
    length = max(len(e.ids) for e in encoded)
    ids = torch.full((len(encoded), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), length), dtype=torch.long)
    types = torch.zeros((len(encoded), length), dtype=torch.long)
    for row, e in enumerate(encoded):
        ids[row, :len(e.ids)] = torch.tensor(e.ids)
        mask[row, :len(e.ids)] = 1
        types[row, :len(e.ids)] = torch.tensor(e.type_ids)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def check_room(method, config: EncoderConfig, max_length: int | None, pair: bool) -> int:
    """Room in the position table for the special tokens and one token of each text, before any work
    (below that, the tokenizers library silently stops truncating and the encoder fails on an index).
    Returns the positions a row needs at least; raises OptionError naming the option to change."""
    sep_width = 2 if config.family == "roberta" else 1
    texts = 2 if pair else 1
    needed = 2 + (sep_width if pair else 0) + texts  # <s>/[CLS], separators, </s>/[SEP], a token per text
    if method.template:
        pieces = check_template(method.template)
        fixed = 2 + sum(sep_width if p == "[SEP]" else 0 if p in ("{a}", "{b}") or p.startswith("[P") else 1
                        for p in pieces)
        room = config.max_tokens - fixed - method.positions_used  # v1's slots, or v2's shifted positions
        if room < sum(p in ("{a}", "{b}") for p in pieces):
            raise OptionError(f"--template {method.template!r} with {method.positions_used} virtual tokens fills "
                              f"the model's {config.max_tokens} positions: no room is left for the text")
        needed = fixed + method.positions_used + texts
    elif config.max_tokens - method.positions_used < needed:
        raise OptionError(f"--num-virtual-tokens {method.num_virtual_tokens} leaves {config.max_tokens - method.positions_used}"
                          f" of the model's {config.max_tokens} positions for the text; it needs at least {needed} "
                          "(special tokens and one token of each text)")
    in_row = needed - (method.positions_used if method.template else 0)  # virtual tokens are not --max-length's
    if max_length is not None and max_length < in_row:
        raise OptionError(f"--max-length {max_length} is too short: the special tokens" +
                          (", the template's words" if method.template else "") +
                          f" and one token of each text need {in_row}")
    return needed
