"""A BERT/RoBERTa encoder written out: embeddings, then post-LayerNorm transformer layers.

The one addition to the textbook encoder is the `prefix` argument of attention: P-tuning v2
(Liu et al. 2022, §3.2) prepends learned keys and values to every layer; see `SelfAttention`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import EncoderConfig
from .fast import dropout  # F.dropout with a cheaper mask on the CPU

Prefix = tuple[torch.Tensor, torch.Tensor]  # (key, value), each (B, heads, prefix_len, head_dim)


def default_position_ids(config: EncoderConfig, input_ids: torch.Tensor | None,
                         batch: int, length: int, device) -> torch.Tensor:
    """Position ids as HF computes them when none are given.

    RoBERTa, from token ids: count real tokens, so padding keeps position `pad_token_id` and
    text starts at `pad_token_id + 1` (fairseq's `make_positions`). From embeddings (no ids to
    look at) both families simply count from their first position.
    """
    if config.family == "roberta" and input_ids is not None:
        real = input_ids.ne(config.pad_token_id).long()
        return torch.cumsum(real, dim=1) * real + config.pad_token_id
    positions = torch.arange(length, device=device) + config.position_offset
    return positions.expand(batch, length)


class LayerNorm(nn.LayerNorm):
    """`nn.LayerNorm`, in fp32 under autocast on every device: CUDA's autocast runs layer_norm in fp32
    by itself, the CPU's leaves it in the input's dtype. Its fp32 output keeps the residual stream in
    fp32 between the half-precision matrix products, as transformers + peft run on a GPU."""

    def forward(self, x):
        if torch.is_autocast_enabled(x.device.type):
            return F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps)
        return super().forward(x)


class Embeddings(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.word = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.norm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout_p = config.hidden_dropout_prob

    def forward(self, inputs_embeds, token_type_ids, position_ids):
        x = inputs_embeds + self.token_type(token_type_ids) + self.position(position_ids)
        return dropout(self.norm(x), self.dropout_p, self.training)


Only = int | torch.Tensor | None  # the one position per row the last layer computes (None: all)


def one_position(x: torch.Tensor, only: int | torch.Tensor) -> torch.Tensor:
    """(B, T, h) -> (B, 1, h): position `only` of every row, or `only[b]` of row b."""
    if isinstance(only, int):
        return x[:, only:only + 1]
    return x[torch.arange(x.shape[0], device=x.device), only].unsqueeze(1)


class SelfAttention(nn.Module):
    def __init__(self, config: EncoderConfig, fused: bool = True):
        super().__init__()
        self.num_heads, self.head_dim = config.num_attention_heads, config.head_dim
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.output = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob
        self.fused = fused  # True: torch's scaled_dot_product_attention; False: the math below

    def forward(self, x, mask, prefix: Prefix | None = None, only: Only = None):
        """`mask`: additive, (B, 1, 1, P+T) over the prefix and the text, or None: all visible.
        `only`: compute the output of this one position per row (queries), not all."""
        B, T, C = x.shape
        split = lambda t: t.view(B, -1, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        queries = x if only is None else one_position(x, only)
        q, k, v = split(self.query(queries)), split(self.key(x)), split(self.value(x))

        if prefix is not None:  # P-tuning v2: learned keys/values in front of the text's own
            prefix_key, prefix_value = prefix                  # (B, H, P, D)
            k = torch.cat([prefix_key.to(k.dtype), k], dim=2)  # (B, H, P+T, D)
            v = torch.cat([prefix_value.to(v.dtype), v], dim=2)

        # In training on the CPU, SDPA falls back to this same math with the slow dropout mask.
        cpu_dropout = self.training and self.dropout_p > 0 and x.device.type == "cpu"
        if self.fused and not cpu_dropout:  # without a mask SDPA may pick the flash kernel
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                               dropout_p=self.dropout_p if self.training else 0.0)
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, H, T, P+T)
            if mask is not None:
                scores = scores + mask                                    # -inf-like where padded
            probs = F.softmax(scores.float(), dim=-1).to(q.dtype)         # fp32 softmax (AMP-safe)
            probs = dropout(probs, self.dropout_p, self.training)
            y = probs @ v                                                  # (B, H, T, D)
        return self.output(y.transpose(1, 2).reshape(B, -1, C))


class FeedForward(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)
        # HF "gelu" is the exact erf form; "gelu_new" the tanh approximation.
        self.approximate = "none" if config.hidden_act == "gelu" else "tanh"
        self.relu = config.hidden_act == "relu"

    def forward(self, x):
        h = self.up(x)
        h = F.relu(h) if self.relu else F.gelu(h, approximate=self.approximate)
        return self.down(h)


class Layer(nn.Module):
    """Post-LayerNorm (as in BERT): residual add, then normalise."""

    def __init__(self, config: EncoderConfig, fused: bool = True):
        super().__init__()
        self.attention = SelfAttention(config, fused)
        self.attention_norm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn = FeedForward(config)
        self.ffn_norm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout_p = config.hidden_dropout_prob

    def forward(self, x, mask, prefix: Prefix | None = None, only: Only = None):
        drop = lambda t: dropout(t, self.dropout_p, self.training)  # noqa: E731
        residual = x if only is None else one_position(x, only)
        x = self.attention_norm(residual + drop(self.attention(x, mask, prefix, only)))
        return self.ffn_norm(x + drop(self.ffn(x)))


class Encoder(nn.Module):
    def __init__(self, config: EncoderConfig, fused: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(Layer(config, fused) for _ in range(config.num_hidden_layers))

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, prefixes: list[Prefix] | None = None, prefix_mask=None, only: Only = None):
        """Returns the last hidden states, (B, T, hidden); with `only`, (B, 1, hidden) at that position.

        Give `input_ids` or `inputs_embeds` (prompt methods splice their vectors into the
        latter). `prefixes`: one (key, value) pair per layer, or None. `prefix_mask`: (B, P),
        1 where a prefix entry is real; only needed when rows carry prefixes of different lengths.
        `attention_mask=None` means no padding. `only`: a classifier reads one token, so the last
        layer computes that token's row alone (its keys and values still come from every token); an int
        is the same position in every row, a (B,) tensor one position per row (an MLM head reads [MASK]).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embeddings.word(input_ids)
        B, T, _ = inputs_embeds.shape
        device = inputs_embeds.device
        if token_type_ids is None:
            token_type_ids = torch.zeros(B, T, dtype=torch.long, device=device)
        if position_ids is None:
            position_ids = default_position_ids(self.config, input_ids, B, T, device)
        if prefixes is not None and len(prefixes) != len(self.layers):
            raise ValueError(f"got {len(prefixes)} prefixes for {len(self.layers)} layers")

        x = self.embeddings(inputs_embeds, token_type_ids, position_ids)
        mask = self.attention_mask(attention_mask, prefix_mask, prefixes, B, T, x)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, mask, None if prefixes is None else prefixes[i], only if i == last else None)
        return x

    @staticmethod
    def attention_mask(attention_mask, prefix_mask, prefixes, B: int, T: int, x) -> torch.Tensor | None:
        """The one additive mask every layer uses, (B, 1, 1, P+T): 0 where a key may be attended,
        a huge negative where padded. The prefix part (P keys, in front) is visible unless
        `prefix_mask` says otherwise. None when nothing is masked (SDPA may then pick flash).

        In the dtype attention computes in (under autocast, not the fp32 of the residual stream).
        """
        if attention_mask is None and prefix_mask is None:
            return None
        if attention_mask is None:
            attention_mask = torch.ones(B, T, dtype=prefix_mask.dtype, device=x.device)
        if prefixes is not None:
            P = prefixes[0][0].shape[2]
            if prefix_mask is None:
                prefix_mask = attention_mask.new_ones(B, P)
            attention_mask = torch.cat([prefix_mask.to(attention_mask.dtype), attention_mask], dim=1)  # (B, P+T)
        device = x.device
        dtype = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else x.dtype
        return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
