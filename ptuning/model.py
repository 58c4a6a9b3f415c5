"""A frozen encoder, a prompt method around it, and a head: `PromptModel(encoder, method, head)`.

    text ids ──► [P-tuning v1: prompt vectors spliced into the input embeddings] ──► encoder
             ──► [P-tuning v2: key/value prefixes handed to every attention layer] ──► encoder
    encoder hidden states ──► the positions the head reads ──► head ──► logits

How prompts enter (the method) and what a task reads out (the head) are independent: any
method works with any head (a v1 template only with one-token heads). A cloze task's MLM head reads
each row's [MASK] (P-tuning v1 as its paper runs it: a template around the text, the answer a word).

Which token the head reads is a real choice (P-tuning-v2 issue #18): peft prepends the v1
prompts and its head reads position 0, the first *virtual* token; `head_token="cls"` reads the
real `<s>`/`[CLS]` instead.
"""
from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from . import arguments
from .config import EncoderConfig
from .encoder import Encoder, default_position_ids
from .errors import CheckpointError, OptionError, is_unicode
from .heads import READS, build_head
from .options import at_least, option, sane_size
from .prompts import PrefixEncoder, PromptEncoder
from .text.tokenizer import PROMPT_SLOT, check_template, template_slots  # PROMPT_SLOT: the id a template puts where a virtual token goes

METHODS = ("ptuning", "prompt", "prefix", "full")
PREFIX_INITS = ("random", "text")


MAX_PROMPT = 4096  # virtual tokens: 60,000 prefix entries exhaust 24 GiB of memory on MiniLM, with no message
V1, V2, PROMPTS = ("ptuning", "prompt"), ("prefix",), ("ptuning", "prompt", "prefix")  # the methods that read an option


@dataclass
class MethodConfig:
    """What is trained and how; saved with every adapter. Defaults: the P-tuning guide's v1.

    Each field is also train.py's option of the same name (`options.option`): `recipe=True` fields left
    unset take the recipe's value (training/recipes.py, and the task family's RECIPES)."""
    method: str = option("ptuning", "ptuning (v1), prompt (v1 without reparameterization), prefix (P-tuning "
                         "v2) or full fine-tuning", choices=METHODS, group="model")
    num_virtual_tokens: int = option(20, "prompt/prefix length", recipe=True, methods=PROMPTS,
                                     checks=[at_least(1), ((lambda v: v <= MAX_PROMPT), f"{{flag}} {{value}} is absurd "
                                             f"(at most {MAX_PROMPT}; the papers use up to a few hundred)")],
                                     group="model")
    encoder_hidden_size: int = option(128, "v1 prompt-encoder width", recipe=True, methods=("ptuning",),
                                      checks=[at_least(1), sane_size()], group="model")
    reparam: str = option("mlp", "v1 prompt encoder", choices=("mlp", "lstm", "none"), recipe=True,
                          methods=("ptuning",), group="model")
    lstm_layers: int = option(2, cli=False)  # v1 with reparam lstm
    prefix_projection: bool = option(False, "v2 MLP reparameterization", recipe=True, negatable=True,
                                     methods=V2, group="model")
    prefix_hidden_size: int = option(512, "v2 projection width", methods=V2, needs="prefix_projection",
                                     checks=[at_least(1), sane_size()], group="model")
    prefix_dropout: float = option(0.0, "v2 dropout on prefix entries (P-tuning-v2 repo: 0.1)", recipe=True,
                                   methods=V2, checks=[((lambda v: 0 <= v < 1), "{flag} must be in [0, 1)")], group="model")
    prefix_position_shift: bool = option(False, "v2: number text positions after the prefix, as transformers + "
                                         "peft and the P-tuning-v2 repo", methods=V2, group="model")
    prefix_init: str = option("random", "v2 starting prefixes: random N(0, 1) as peft, or the keys/values of "
                              "the words of --prefix-text (Li & Liang 2021, §7.4)", choices=PREFIX_INITS,
                              recipe=True, methods=V2, group="model")
    prefix_text: str | None = option(None, "with --prefix-init text: the words (default: the task family's "
                                     "description of the task, PREFIX_TEXT in its file)", methods=V2,
                                     checks=[((lambda v: bool(v.strip()) and is_unicode(v)),
                                              "{flag} must hold words (UTF-8)")], group="model")
    head: str = option("auto", "classification head: auto (roberta for RoBERTa, pooler for BERT), roberta or "
                       "pooler", choices=("auto", "roberta", "pooler"), heads=("sequence",), group="model")
    head_token: str = option("cls", "v1: read <s>/[CLS] (cls) or position 0 like peft (first)",
                             choices=("cls", "first"), recipe=True, methods=V1, heads=("sequence",), group="model")
    template: str | None = option(None, 'v1 prompt placement, e.g. "[P*10] {a} [SEP] {b} [P*10]" '
                                  "(ptuning/text/tokenizer.py); none: prompts in front, as peft. A cloze task: "
                                  'the pattern with its [MASK], e.g. "[P*3] {a}? [MASK], [P*3] {b}" (v1), '
                                  '"{a}? [MASK], {b}" (prefix, full)', methods={"sequence": V1, "mask": None},
                                  heads=("sequence", "mask"), group="model")

    def __post_init__(self):
        self.check_types()
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {self.method!r}")
        if self.method == "prompt":
            self.reparam = "none"
        if self.head_token not in ("cls", "first"):
            raise ValueError(f"head_token must be 'cls' or 'first', not {self.head_token!r}")
        if self.uses_prompts and self.num_virtual_tokens < 1:
            raise ValueError("num_virtual_tokens must be at least 1")
        if self.template is not None:
            check_template(self.template)
        if self.template is not None and template_slots(self.template) and not self.is_v1:
            raise ValueError("a template's [P] slots place v1 prompts (--method ptuning or prompt); with "
                             f"--method {self.method} a template holds only the text, e.g. '{{a}}? [MASK], {{b}}'")
        if self.template is not None and self.is_v1 and template_slots(self.template) != self.num_virtual_tokens:
            raise ValueError(f"the template {self.template!r} holds {template_slots(self.template)} virtual tokens, "
                             f"the method {self.num_virtual_tokens} (--num-virtual-tokens)")
        if self.prefix_init == "text" and not self.is_prefix:
            raise ValueError("prefix_init 'text' starts P-tuning v2's prefixes; it needs --method prefix")
        if self.prefix_init == "text" and self.prefix_projection:
            raise ValueError("prefix_init 'text' sets the prefixes themselves, so it needs prefix_projection off "
                             "(--no-prefix-projection)")
        if self.prefix_text is not None and self.prefix_init != "text":
            raise ValueError("prefix_text is the start of prefix_init 'text' (--prefix-init text)")

    def check_types(self) -> None:
        """Each field's type and range (an adapter_config.json is hand-editable); ValueError names the field."""
        for name in ("num_virtual_tokens", "encoder_hidden_size", "lstm_layers", "prefix_hidden_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{name} must be an integer, not {value!r}")
            value = int(value)  # numpy's int64 from a sweep: a plain int, as adapter_config.json writes it
            setattr(self, name, value)
            if value < 1 and name != "num_virtual_tokens":
                raise ValueError(f"{name} must be at least 1, not {value}")
        for name in ("prefix_projection", "prefix_position_shift"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, not {getattr(self, name)!r}")
        dropout = self.prefix_dropout
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"prefix_dropout must be a number in [0, 1), not {dropout!r}")
        for name, allowed in (("method", METHODS), ("reparam", ("mlp", "lstm", "none")),
                              ("head", ("auto", "roberta", "pooler")), ("prefix_init", PREFIX_INITS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")
        for name in ("template", "prefix_text"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be text or null, not {getattr(self, name)!r}")

    @property
    def is_v1(self) -> bool:
        """Prompts enter at the input (P-tuning v1, prompt tuning)."""
        return self.method in ("ptuning", "prompt")

    @property
    def is_prefix(self) -> bool:
        """Keys and values enter every attention layer (P-tuning v2)."""
        return self.method == "prefix"

    @property
    def is_full(self) -> bool:
        """No prompts: every weight trains."""
        return self.method == "full"

    @property
    def uses_prompts(self) -> bool:
        return not self.is_full

    @property
    def positions_used(self) -> int:
        """Position-table entries the method takes from the text."""
        if self.is_v1 or (self.is_prefix and self.prefix_position_shift):
            return self.num_virtual_tokens
        return 0

    def to_dict(self) -> dict:
        return asdict(self)


def prompt_module(config: EncoderConfig, method: MethodConfig) -> PromptEncoder | PrefixEncoder:
    """The method's trainable prompt part, for the model and the peft export alike:
    v1 a `PromptEncoder` (input vectors), v2 a `PrefixEncoder` (keys and values per layer)."""
    if method.is_v1:
        return PromptEncoder(method.num_virtual_tokens, config.hidden_size, method.encoder_hidden_size,
                             method.reparam, method.lstm_layers)
    if method.is_prefix:
        return PrefixEncoder(method.num_virtual_tokens, config.num_hidden_layers, config.num_attention_heads,
                             config.hidden_size, method.prefix_hidden_size if method.prefix_projection else None,
                             method.prefix_dropout)
    raise ValueError("full fine-tuning has no prompt module")


class PromptModel(nn.Module):
    """A frozen encoder, a prompt method around it, and a head that reads the encoder's output.

    The head says which positions it reads (`head.reads`): "cls", one token per row (sequence
    heads; the encoder's last layer then computes that row alone); "mask", each row's [MASK] (an MLM
    head: the head's `mask_token_id` finds it; the last layer computes that position alone); or "all",
    every text position (token and span heads; the v1 prompts in front are dropped, so outputs align
    with input_ids).
    """

    def __init__(self, encoder: Encoder, method: MethodConfig, head: nn.Module):
        super().__init__()
        config = encoder.config
        self.encoder, self.method = encoder, method
        if method.positions_used >= config.max_tokens:
            raise ValueError(f"{method.num_virtual_tokens} virtual tokens leave no room in "
                             f"{config.max_tokens} positions")
        reads = getattr(head, "reads", None)
        if reads not in READS:
            raise ValueError(f"head {type(head).__name__} must say what it reads: reads = one of {READS}")
        if reads == "all" and method.template is not None:
            raise OptionError(f"a template places v1 prompts among the text, so {type(head).__name__}'s outputs "
                             "would not line up with the input tokens; use prompts in front (no template)")
        masks = check_template(method.template).count("[MASK]") if method.template else 0
        if reads == "mask" and masks != 1:
            raise OptionError(f"{type(head).__name__} reads the answer at the template's [MASK]: give a --template "
                              f"with one [MASK], e.g. '{{a}}? [MASK], {{b}}' (it has {masks})")
        if reads != "mask" and masks:
            raise OptionError("a [MASK] in the template is read by an MLM head only (a cloze task, --task "
                              "mrpc-cloze); a classification head reads <s>/[CLS]")
        if reads == "cls" and method.template is not None and not method.is_v1:
            raise OptionError(f"a template places v1 prompts; with --method {method.method} a classification head "
                              "has nothing for it to place (a cloze task's MLM head reads one: --task mrpc-cloze)")
        if method.is_v1:
            self.prompt_encoder = prompt_module(config, method)
        if method.is_prefix:
            self.prefix_encoder = prompt_module(config, method)
        self.head = head
        if hasattr(head, "tie"):  # an MLM head's decoder is the word-embedding matrix (HF's tie_weights)
            head.tie(encoder.embeddings.word)
        # v1 without a template puts its prompts in front: the text starts after them.
        self.text_start = method.num_virtual_tokens if method.is_v1 and method.template is None else 0
        # The token a sequence head reads: <s>/[CLS] (after front prompts), or position 0 (peft's v1 choice).
        self.head_index = 0 if method.head_token == "first" else self.text_start

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        """(B, T) ids and mask -> the head's output: (B, C) logits for a sequence head; for token
        and span heads one output per text position, (B, T, C) or two (B, T), aligned with
        `input_ids`. A mask of None: no padding in the batch."""
        room = self.encoder.config.max_tokens - self.method.positions_used + template_slots(self.method.template)
        arguments.ids(input_ids, attention_mask, token_type_ids, self.encoder.config, room,
                      check_range=not self.training)  # one sync per batch: evaluation and prediction only
        B = input_ids.shape[0]
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        embeds = position_ids = prefixes = None
        only = None if self.head.reads == "all" else self.head_index
        if self.head.reads == "mask":  # each row's [MASK], counted after the v1 prompts put in front
            only = self.mask_positions(input_ids, attention_mask) + self.text_start
        if self.method.is_v1:
            embeds, attention_mask, token_type_ids = self.splice_prompts(input_ids, attention_mask, token_type_ids)
            input_ids = None  # positions then count from the first token, virtual ones included (as HF)
        elif self.method.is_prefix:
            prefixes = self.prefix_encoder(B)
            if self.method.prefix_position_shift:
                position_ids = self.shifted_positions(input_ids)

        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              position_ids=position_ids, inputs_embeds=embeds, prefixes=prefixes, only=only)
        features = hidden[:, 0] if only is not None else hidden[:, self.text_start:]  # (B, h) or (B, T, h)
        return self.head(features.to(self.head_dtype))

    def mask_positions(self, input_ids, attention_mask=None) -> torch.Tensor:
        """(B,) where each row's mask token is. Outside training, a row without exactly one (among its
        real tokens: padding is not read) is refused."""
        is_mask = input_ids.eq(self.head.mask_token_id)
        if attention_mask is not None:
            is_mask = is_mask & attention_mask.bool()
        if not self.training:
            counts = is_mask.sum(dim=1)
            bad = (counts != 1).nonzero()
            if len(bad):
                row = int(bad[0])
                raise ValueError(f"input_ids row {row} holds {int(counts[row])} mask tokens (id "
                                 f"{self.head.mask_token_id}); a cloze row holds exactly one, where the template "
                                 "puts [MASK]")
        return is_mask.int().argmax(dim=1)

    def splice_prompts(self, input_ids, attention_mask, token_type_ids):
        """P-tuning v1: put the prompt vectors where the ids hold PROMPT_SLOT.

        Without a template the slots go in front of the text, as peft does: mask 1, token type 0.
        """
        n = self.method.num_virtual_tokens
        if self.method.template is None:
            B = input_ids.shape[0]
            input_ids = torch.cat([input_ids.new_full((B, n), PROMPT_SLOT), input_ids], dim=1)
            if attention_mask is not None:
                attention_mask = torch.cat([attention_mask.new_ones(B, n), attention_mask], dim=1)
            token_type_ids = torch.cat([token_type_ids.new_zeros(B, n), token_type_ids], dim=1)
        slots = input_ids.eq(PROMPT_SLOT)                                  # n per row
        embeds = self.encoder.embeddings.word(input_ids.clamp(min=0))     # (B, T, h)
        prompts = self.prompt_encoder().to(embeds.dtype)                   # (n, h)
        embeds = embeds.masked_scatter(slots[..., None], prompts.expand(input_ids.shape[0], n, -1))
        return embeds, attention_mask, token_type_ids

    def shifted_positions(self, input_ids):
        """Text positions numbered after the prefix, as transformers + peft do (HF passes the
        prefix as a key/value cache of length n, and positions continue after a cache)."""
        config = self.encoder.config
        positions = default_position_ids(config, input_ids, *input_ids.shape, input_ids.device)
        real = input_ids.ne(config.pad_token_id) if config.family == "roberta" else 1
        return positions + self.method.num_virtual_tokens * real  # RoBERTa's padding stays at pad

    @torch.no_grad()
    def init_prefix_from_tokens(self, ids: list[int]) -> None:
        """Start P-tuning v2 from real words: virtual token i gets the keys and values the frozen
        encoder computes for token `ids[i]` in every layer (Li & Liang 2021, §7.4: better than a
        random start, above all with little data). A random N(0, 1) prefix is as loud as the text's own
        keys and values and takes much of each layer's attention before it has learnt anything.

        `ids`: one token id per virtual token (train.py: a text describing the task), read as one text
        (in pieces as long as the position table allows), positions from the first.
        """
        n, config = self.method.num_virtual_tokens, self.encoder.config
        if not self.method.is_prefix or self.method.prefix_projection:
            raise ValueError("init_prefix_from_tokens needs P-tuning v2 without the projection")
        if len(ids) != n:
            raise ValueError(f"init_prefix_from_tokens needs {n} token ids (one per virtual token), not {len(ids)}")
        training, device = self.encoder.training, self.encoder.embeddings.word.weight.device
        self.encoder.eval()
        pieces = []
        for start in range(0, n, config.max_tokens):
            x = torch.tensor([ids[start:start + config.max_tokens]], device=device)  # (1, T)
            T = x.shape[1]
            x = self.encoder.embeddings(self.encoder.embeddings.word(x), torch.zeros_like(x),
                                        default_position_ids(config, None, 1, T, device))
            keys_values = []
            for layer in self.encoder.layers:  # each layer's keys and values, then its output
                keys_values += [layer.attention.key(x), layer.attention.value(x)]
                x = layer(x, None)
            pieces.append(torch.cat(keys_values, dim=-1)[0])  # (T, 2·L·h): [key 0 | value 0 | key 1 | …]
        self.prefix_encoder.embedding.weight.copy_(torch.cat(pieces))
        self.encoder.train(training)

    @property
    def head_dtype(self) -> torch.dtype:
        return next(self.head.parameters()).dtype

    # --- what trains -------------------------------------------------------------------------
    def trainable_names(self) -> list[str]:
        return [name for name, p in self.named_parameters() if p.requires_grad]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {name: p.detach() for name, p in self.named_parameters() if p.requires_grad}


def mark_trainable(model: PromptModel, pooler_pretrained: bool) -> None:
    """The one place that decides what trains.

    Full fine-tuning trains everything. Prompt methods train their prompt/prefix encoder and
    the head; the encoder stays frozen, and so does a pretrained pooler (as peft leaves it) and a
    head that is the pretraining's own (`head.pretrained`: the MLM head, so only the prompts train,
    as P-tuning's frozen-model setting).
    """
    full, pretrained_head = model.method.is_full, getattr(model.head, "pretrained", False)
    for name, p in model.named_parameters():
        frozen = name.startswith("encoder.") or (name.startswith("head.pooler.") and pooler_pretrained) or \
            (name.startswith("head.") and pretrained_head)
        p.requires_grad_(full or not frozen)


def parameter_report(model: nn.Module) -> str:
    """peft's wording, so numbers compare at a glance."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return f"trainable params: {trainable:,d} || all params: {total:,d} || trainable%: {100 * trainable / total:.4f}"


def sequence_head(config: EncoderConfig, method: MethodConfig, num_labels: int) -> nn.Module:
    """The classification head a method asks for: `auto` picks RoBERTa's for RoBERTa, the pooler for BERT."""
    kind = method.head if method.head != "auto" else ("roberta" if config.family == "roberta" else "pooler")
    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
        raise OptionError(f"num_labels must be an integer of at least 1, not {num_labels!r}")
    return build_head(kind, config.hidden_size, num_labels, head_dropout(config))


def head_dropout(config: EncoderConfig) -> float:
    """As HF: `classifier_dropout` when the config sets it, else `hidden_dropout_prob`."""
    return config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob


def init_head(head: nn.Module, std: float = 0.02) -> None:
    """As HF initialises a fresh head: normal(0, initializer_range), zero bias.

    The head was built without random draws (on the meta device, or with its draws undone), so the
    prompt modules draw first; `reset_parameters` then draws what building the head would have, and
    a seed gives the same weights as when the model built its own head.
    """
    for module in head.modules():
        if hasattr(module, "reset_parameters") and module is not head:
            module.reset_parameters()
    for module in head.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            nn.init.zeros_(module.bias)
    for p in head.parameters(recurse=False):  # a head's own tensor (the MLM head's bias): zero, as HF
        nn.init.zeros_(p)


MakeHead = Callable[[EncoderConfig], nn.Module]  # the encoder's config -> a fresh head


def build_model(config: EncoderConfig, method: MethodConfig, make_head: MakeHead,
                device: str | torch.device = "cpu", fused: bool = True) -> PromptModel:
    """A model with random weights; on the `meta` device it costs no memory (for sizing a run)."""
    with torch.device("meta"):
        head = make_head(config)
    with torch.device(device):
        model = PromptModel(Encoder(config, fused), method, head)
    if str(device) != "meta":
        model.head.to_empty(device=device)
        init_head(model.head)
    mark_trainable(model, pooler_pretrained=False)
    return model


def load_model(model_dir: str | Path, method: MethodConfig, make_head: MakeHead,
               dtype: torch.dtype = torch.float32, fused: bool = True, seed: int | None = None) -> PromptModel:
    """Pretrained encoder from a HF folder (frozen part in `dtype`), fresh prompts and head in fp32.

    A head stored in the checkpoint (pooler; a task model's classifier) is used when it fits.
    Returned in eval mode, as transformers' `from_pretrained` (`fit` switches to training mode).
    `dtype` other than fp32 with full fine-tuning is refused: every weight trains there, and AdamW
    needs fp32 master weights (train in fp32 with `--precision bf16`/autocast instead).
    """
    from .weights import load_encoder

    if method.is_full and dtype != torch.float32:
        raise OptionError(f"dtype={dtype} cannot be honoured with method 'full': every weight trains, so the "
                          "model keeps fp32 weights; load with dtype=torch.float32 and use autocast "
                          "(train.py --precision bf16) for speed")
    encoder, head_state = load_encoder(model_dir, dtype=dtype, fused=fused)
    return wrap_encoder(encoder, head_state, method, make_head, seed, source=str(model_dir)).eval()


def wrap_encoder(encoder: Encoder, head_state: dict, method: MethodConfig, make_head: MakeHead,
                 seed: int | None = None, source: str = "the checkpoint") -> PromptModel:
    """A loaded encoder inside a prompt method and a fresh head: what `load_model` does once the weights
    are in (an adapter bank wraps one encoder many times). A head tensor stored in the checkpoint
    (`head_state`: pooler, a task model's classifier) is used where it fits."""
    if seed is not None:
        torch.manual_seed(seed)
    # Built on the CPU with its random draws undone, so the prompt modules draw first and `init_head`
    # then draws the head (on the meta device instead, torch's Python reference kernels import sympy:
    # a third of a second of every run's start-up).
    with torch.random.fork_rng(devices=[]):
        head = make_head(encoder.config)
    model = PromptModel(encoder, method, head)  # the prompt modules draw their weights first
    init_head(model.head)
    own = model.head.state_dict()
    fitting = {k: t.float() for k, t in head_state.items() if k in own and own[k].shape == t.shape}
    if getattr(model.head, "pretrained", False) and set(own) - set(fitting):  # the MLM head cannot start at random
        from .weights import hf_head_keys

        missing = sorted(set(own) - set(fitting))
        raise CheckpointError(f"{source}: no pretrained {type(model.head).__name__} (missing: "
                              f"{', '.join(hf_head_keys(missing, encoder.config.family))}). A cloze task reads the "
                              "model's masked-language-model head: use a *ForMaskedLM checkpoint (roberta-large, "
                              "bert-base-uncased as published), or a classification task (--task mrpc) whose head "
                              "trains from scratch")
    model.head.load_state_dict(fitting, strict=False)
    mark_trainable(model, pooler_pretrained="pooler.weight" in fitting)
    return model


def build_classifier(config: EncoderConfig, method: MethodConfig, num_labels: int,
                     device: str | torch.device = "cpu", fused: bool = True) -> PromptModel:
    """`build_model` with the method's sequence classification head."""
    return build_model(config, method, lambda c: sequence_head(c, method, num_labels), device, fused)


def load_classifier(model_dir: str | Path, method: MethodConfig, num_labels: int,
                    dtype: torch.dtype = torch.float32, fused: bool = True, seed: int | None = None
                    ) -> PromptModel:
    """`load_model` with the method's sequence classification head."""
    return load_model(model_dir, method, lambda c: sequence_head(c, method, num_labels), dtype, fused, seed)
