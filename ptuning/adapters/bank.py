"""Many adapters, one frozen backbone: a mixed batch scored in one encoder pass.

Prompts are only inputs, so rows that use different adapters can share a forward pass:
    - v1 rows: laid out as alone, [their prompt vectors | their text], left-aligned and
      padded to the longest row (a v2 row is just its text).
    - v2 rows: their prefixes fill a prefix region of the longest prefix's length; the
      rest is masked per row (`prefix_mask`), and v1 rows mask the whole region.
Each row gets the position ids and head token it would get alone, so its logits equal a
solo run (up to float summation order). Full fine-tuning has no shared backbone: not allowed.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .. import arguments
from ..errors import OptionError
from ..model import PromptModel


class AdapterBank(nn.Module):
    def __init__(self, adapters: dict[str, PromptModel]):
        super().__init__()
        encoders = {id(m.encoder) for m in adapters.values()}
        if len(encoders) != 1:
            raise ValueError("every adapter in a bank must wrap the same encoder object")
        for name, model in adapters.items():
            if model.method.is_full:
                raise ValueError(f"adapter {name!r} is full fine-tuning: it has its own backbone")
            if model.method.template is not None:
                raise ValueError(f"adapter {name!r} uses a template; a bank supports prompts in front only")
        self.adapters = nn.ModuleDict(adapters)
        self.encoder = next(iter(adapters.values())).encoder

    @torch.no_grad()
    def forward(self, input_ids, attention_mask, token_type_ids, adapter_names: list[str]) -> list[torch.Tensor]:
        """Rows of ids as each adapter's tokenizer made them; returns one logits vector per row."""
        arguments.ids(input_ids, attention_mask, token_type_ids, self.encoder.config,
                      self.encoder.config.max_tokens, check_range=True)
        if isinstance(adapter_names, str) or len(adapter_names) != input_ids.shape[0]:
            raise OptionError(f"adapter_names must name one adapter per row ({input_ids.shape[0]} rows), not "
                              f"{adapter_names!r}")
        unknown = sorted({name for name in adapter_names if name not in self.adapters})
        if unknown:
            raise OptionError(f"adapter(s) {', '.join(map(repr, unknown))} are not in the bank "
                              f"({', '.join(self.adapters)})")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        B, T = input_ids.shape
        config, device = self.encoder.config, input_ids.device
        models = [self.adapters[name] for name in adapter_names]
        prompt_len = torch.tensor([m.method.num_virtual_tokens if m.method.is_v1 else 0 for m in models], device=device)
        prefix_len = [m.method.num_virtual_tokens if m.method.is_prefix else 0 for m in models]
        N, P = int(prompt_len.max()), max(prefix_len)
        groups = {}  # adapter name -> rows
        for row, name in enumerate(adapter_names):
            groups.setdefault(name, []).append(row)

        # 1. Each row laid out as alone: [its prompts | its text], left-aligned, padded to the longest.
        lengths = attention_mask.sum(dim=1)
        W = int((prompt_len + lengths).max())
        col = torch.arange(W, device=device)
        is_slot = col[None, :] < prompt_len[:, None]                              # (B, W)
        text_at = (col[None, :] - prompt_len[:, None]).clamp(0, T - 1)            # which text token sits here
        text_embeds = self.encoder.embeddings.word(input_ids.gather(1, text_at))  # (B, W, h)
        prompts = text_embeds.new_zeros(B, max(N, 1), text_embeds.shape[-1])      # each row's prompts, left-aligned
        for name, rows in groups.items():
            model = self.adapters[name]
            if model.method.is_v1:
                prompts[rows, :model.method.num_virtual_tokens] = model.prompt_encoder().to(prompts.dtype)
        slot_embeds = prompts.gather(1, col.clamp(max=prompts.shape[1] - 1)[None, :, None].expand(B, W, prompts.shape[-1]))
        embeds = torch.where(is_slot[..., None], slot_embeds, text_embeds)
        in_text = col[None, :] < (prompt_len + lengths)[:, None]
        attention_mask = (is_slot | (in_text & attention_mask.gather(1, text_at).bool())).long()
        token_type_ids = torch.where(is_slot, 0, token_type_ids.gather(1, text_at))

        # 2. Positions as alone: sequential from each row's first token (its first prompt, or <s>),
        #    plus the prefix length where the adapter numbers text after its prefix.
        shift = torch.tensor([p if m.method.prefix_position_shift else 0 for m, p in zip(models, prefix_len)],
                             device=device)
        positions = col[None, :] + config.position_offset + shift[:, None]

        # 3. The prefix region: (B, heads, P, D) per layer, each row's prefix first, the rest masked.
        prefixes = prefix_mask = None
        if P:
            layers, heads, head_dim = config.num_hidden_layers, config.num_attention_heads, config.head_dim
            kv = embeds.new_zeros(layers, 2, B, heads, P, head_dim)
            prefix_mask = attention_mask.new_zeros(B, P)
            for name, rows in groups.items():
                model = self.adapters[name]
                if model.method.is_prefix:
                    n = model.method.num_virtual_tokens
                    for i, (key, value) in enumerate(model.prefix_encoder(len(rows))):
                        kv[i, 0, rows, :, :n] = key.to(kv.dtype)
                        kv[i, 1, rows, :, :n] = value.to(kv.dtype)
                    prefix_mask[rows, :n] = 1
            prefixes = [(kv[i, 0], kv[i, 1]) for i in range(layers)]

        hidden = self.encoder(inputs_embeds=embeds, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              position_ids=positions, prefixes=prefixes, prefix_mask=prefix_mask)

        # 4. Each adapter's head on its rows, reading the token it reads alone.
        logits = [None] * B
        for name, rows in groups.items():
            model = self.adapters[name]
            cls = model.method.is_v1 and model.method.head_token == "cls"
            index = prompt_len[rows] if cls else torch.zeros(len(rows), dtype=torch.long, device=device)
            out = model.head(hidden[rows, index].to(model.head_dtype))
            for row, row_logits in zip(rows, out):
                logits[row] = row_logits
        return logits


def load_bank(adapter_dirs: dict[str, str | Path], model_dir: str | Path | None = None, device="cpu"):
    """Load several train.py adapters over one base model.

    Returns (bank, {name: tokenizer}, {name: AdapterConfig}).
    """
    from .files import AdapterError, check_model_files, load_adapter_weights, read_adapter
    from .peft import is_peft_adapter
    from ..model import wrap_encoder
    from ..tasks import family_of_adapter
    from ..text.tokenizer import Tokenizer
    from ..weights import load_encoder, resolve_model_dir

    if not isinstance(adapter_dirs, dict) or not adapter_dirs:
        raise AdapterError(f"load_bank needs a dict {{name: adapter folder}} of at least one adapter, not "
                           f"{adapter_dirs!r}")
    device = arguments.device(device)
    for name, folder in adapter_dirs.items():
        if not isinstance(name, str) or not name.strip():
            raise AdapterError(f"adapter {folder}: its name must be a non-empty string, not {name!r}")
        arguments.folder(folder, f"adapter {name!r}")
        if is_peft_adapter(folder):
            raise AdapterError(f"adapter {name!r} ({folder}) is a peft adapter folder; a bank takes adapters "
                               "of train.py only (predict it alone with --adapter, or train it with train.py)")
    configs = {name: read_adapter(folder) for name, folder in adapter_dirs.items()}
    for name, (config, _) in configs.items():
        if config.method.is_full or config.method.template is not None:
            what = "is full fine-tuning (it has its own backbone)" if config.method.is_full else \
                "uses a template; a bank supports prompts in front only"
            raise AdapterError(f"adapter {name!r} ({adapter_dirs[name]}) {what}; predict it alone")
    fingerprints = {config.fingerprint for config, _ in configs.values()}
    if len(fingerprints) > 1:
        each = ", ".join(f"{name} {config.fingerprint}" for name, (config, _) in configs.items())
        raise AdapterError(f"the adapters were trained on different base models (weights fingerprints: {each})")
    first = next(iter(configs.values()))[0]
    model_dir = resolve_model_dir(str(model_dir or first.base_model_path))
    for name, (config, _) in configs.items():  # the same config.json and tokenizer each was trained with
        check_model_files(config, model_dir, f"adapter {name!r} ({adapter_dirs[name]})")
    encoder, head_state = load_encoder(model_dir)
    adapters, tokenizers = {}, {}
    for name, (config, tensors) in configs.items():
        method, family = config.method, family_of_adapter(config)
        model = wrap_encoder(encoder, head_state, method, lambda c: family.head(c, method, config.num_labels))
        if model.head.reads != "cls":  # a token or span head: one output per position, not per row
            raise AdapterError(f"adapter {name!r} ({adapter_dirs[name]}) was trained on {config.task}, "
                               f"{family.DESCRIPTION}: a bank scores one label per row (sequence classification); "
                               "predict it alone")
        load_adapter_weights(model, tensors, str(adapter_dirs[name]))
        adapters[name] = model
        tokenizers[name] = Tokenizer.from_folder(model_dir, encoder.config, method.positions_used, None,
                                                 config.max_length)
    return AdapterBank(adapters).to(device).eval(), tokenizers, {n: c for n, (c, _) in configs.items()}


def bank_records(bank: AdapterBank, tokenizers: dict, metas: dict, examples, names: list[str], args):
    """predict.py's records for rows that each name their adapter (`example.label`: its index in `names`):
    each batch of arriving rows is one encoder pass, whatever adapters its rows use."""
    from ..inference import inference_autocast, logits_record
    from ..prediction import check_finite_logits
    from ..text.tokenizer import collate

    pad_id = next(iter(tokenizers.values())).pad_id
    autocast = inference_autocast(args.device, args.precision)
    for start in range(0, len(examples), args.batch_size):
        rows = examples[start:start + args.batch_size]
        adapters = [names[e.label] for e in rows]
        batch = collate([tokenizers[a].encode(e.text_a, e.text_b) for e, a in zip(rows, adapters)], pad_id)
        with autocast():
            logits = bank(*(batch[k].to(args.device) for k in ("input_ids", "attention_mask", "token_type_ids")),
                          adapters)
        for e, a, row_logits in zip(rows, adapters, logits):
            row_logits = row_logits.float().cpu().numpy()
            check_finite_logits(row_logits, f"{args.input}:{e.line} (adapter {a!r})")
            yield {"adapter": a, **logits_record(e.line, row_logits, metas[a].label_names or ["score"])}
