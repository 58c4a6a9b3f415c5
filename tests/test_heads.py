"""Token and span heads on PromptModel: one output per *text* position, whatever the method.

The specification: the model's output equals the head applied to the encoder's hidden states
at the input's own positions. For v1 the prompts spliced in front are dropped (peft returns
them too, its issue #1974), so outputs line up with the tokenized input ids.
"""
import pytest
import torch
from torch import nn

from conftest import padded_batch
from ptuning.config import EncoderConfig
from ptuning.encoder import Encoder
from ptuning.heads import SpanHead, TokenHead
from ptuning.model import MethodConfig, PromptModel, sequence_head

TOL = dict(atol=1e-5, rtol=1e-5)
N, C = 4, 5  # virtual tokens, token labels
CONFIG = EncoderConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=37, max_position_embeddings=64)


def make_model(method: MethodConfig, head: nn.Module) -> PromptModel:
    torch.manual_seed(0)
    model = PromptModel(Encoder(CONFIG), method, head).eval()
    for p in model.parameters():  # random head and prompts, so a misaligned row cannot pass
        nn.init.normal_(p, std=0.5)
    return model


def reference_hidden(model: PromptModel, ids, mask, types) -> torch.Tensor:
    """The encoder's hidden states at the text's positions, assembled by hand, (B, T, h)."""
    encoder, method = model.encoder, model.method
    if method.is_v1:  # prompts in front: mask 1, token type 0, positions count from the first prompt
        B = ids.shape[0]
        prompts = model.prompt_encoder().expand(B, -1, -1)
        embeds = torch.cat([prompts, encoder.embeddings.word(ids)], dim=1)
        mask = torch.cat([mask.new_ones(B, N), mask], dim=1)
        types = torch.cat([types.new_zeros(B, N), types], dim=1)
        positions = torch.arange(N + ids.shape[1]).expand(B, -1)
        hidden = encoder(inputs_embeds=embeds, attention_mask=mask, token_type_ids=types, position_ids=positions)
        return hidden[:, N:]
    prefixes = model.prefix_encoder(ids.shape[0]) if method.is_prefix else None
    return encoder(input_ids=ids, attention_mask=mask, token_type_ids=types, prefixes=prefixes)


METHODS = {"full": MethodConfig(method="full"), "prefix": MethodConfig(method="prefix", num_virtual_tokens=N),
           "ptuning": MethodConfig(method="ptuning", num_virtual_tokens=N, encoder_hidden_size=16)}


@pytest.mark.parametrize("method", METHODS)
def test_token_head_reads_every_text_position(method):
    model = make_model(METHODS[method], TokenHead(CONFIG.hidden_size, C, dropout=0.1))
    ids, mask, types = padded_batch("bert")
    with torch.no_grad():
        got = model(ids, mask, types)
        want = model.head(reference_hidden(model, ids, mask, types))
    assert got.shape == (*ids.shape, C)
    torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("method", METHODS)
def test_span_head_gives_start_and_end_scores_per_text_position(method):
    model = make_model(METHODS[method], SpanHead(CONFIG.hidden_size))
    ids, mask, types = padded_batch("bert")
    with torch.no_grad():
        start, end = model(ids, mask, types)
        hidden = reference_hidden(model, ids, mask, types)
    assert start.shape == end.shape == ids.shape
    scores = hidden @ model.head.qa_outputs.weight.T + model.head.qa_outputs.bias  # (B, T, 2)
    torch.testing.assert_close(start, scores[..., 0], **TOL)
    torch.testing.assert_close(end, scores[..., 1], **TOL)


def test_v1_token_outputs_drop_the_prompt_positions():
    """Row t of the output belongs to input token t: changing the last text token changes
    only the outputs at and (through attention) around it, and the output has T rows, not N + T."""
    model = make_model(METHODS["ptuning"], TokenHead(CONFIG.hidden_size, C, dropout=0.0))
    ids = torch.randint(3, 99, (1, 9))
    with torch.no_grad():
        out = model(ids)
        alone = model.head(reference_hidden(model, ids, torch.ones_like(ids), torch.zeros_like(ids)))
    assert out.shape == (1, 9, C)
    torch.testing.assert_close(out, alone, **TOL)


def test_sequence_head_reads_cls_after_the_prompts():
    method = METHODS["ptuning"]
    model = make_model(method, sequence_head(CONFIG, method, 3))
    ids, mask, types = padded_batch("bert")
    with torch.no_grad():
        got = model(ids, mask, types)
        want = model.head(reference_hidden(model, ids, mask, types)[:, 0])
    torch.testing.assert_close(got, want, **TOL)


def test_token_head_with_a_template_is_refused():
    method = MethodConfig(num_virtual_tokens=2, template="[P*2] {a}")
    with pytest.raises(ValueError, match="template"):
        PromptModel(Encoder(CONFIG), method, TokenHead(CONFIG.hidden_size, C, 0.1))
    with pytest.raises(ValueError, match="template"):
        PromptModel(Encoder(CONFIG), method, SpanHead(CONFIG.hidden_size))


def test_a_head_must_say_what_it_reads():
    with pytest.raises(ValueError, match="reads"):
        PromptModel(Encoder(CONFIG), MethodConfig(method="full"), nn.Linear(CONFIG.hidden_size, 2))
