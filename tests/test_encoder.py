"""Behaviour of the encoder, the prompt modules and the classifier around them.

Shapes, the prefix meeting attention, padding invariance, what stays frozen, templates, low
precision, parameter counts and config validation. Tiny random models only.
"""
from __future__ import annotations

import shutil

import pytest
import torch
from conftest import TINY, padded_batch, tiny_hf_model

from ptuning.config import EncoderConfig
from ptuning.encoder import Encoder, SelfAttention
from ptuning.fast import dropout
from ptuning.weights import load_encoder
from ptuning.model import MethodConfig, PromptModel, build_classifier, load_classifier, parameter_report, sequence_head
from ptuning.prompts import PrefixEncoder
from ptuning.text.tokenizer import PROMPT_SLOT, Tokenizer

TOL = dict(atol=1e-5, rtol=1e-5)
B, N = 3, 5  # batch, virtual tokens
CONFIG = EncoderConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=37, max_position_embeddings=64)
H, D, L = CONFIG.num_attention_heads, CONFIG.head_dim, CONFIG.num_hidden_layers


def classifier(encoder, method, num_labels=2):
    return PromptModel(encoder, method, sequence_head(encoder.config, method, num_labels))


def additive_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) 1/0 -> (B, 1, 1, T) additive, as `Encoder.forward` builds it."""
    return (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


# --- PrefixEncoder ------------------------------------------------------------------------------

@pytest.mark.parametrize("projection", [None, 16], ids=["no-projection", "projection"])
def test_prefix_encoder_shapes_and_identical_rows_in_eval(projection):
    torch.manual_seed(0)
    prefix = PrefixEncoder(N, L, H, CONFIG.hidden_size, projection_size=projection, dropout=0.5).eval()
    pairs = prefix(B)
    assert len(pairs) == L
    for key, value in pairs:
        assert key.shape == value.shape == (B, H, N, D)
        for row in range(1, B):  # dropout is off in eval: every example gets the same prefix
            assert torch.equal(key[row], key[0]) and torch.equal(value[row], value[0])
    assert not torch.equal(pairs[0][0], pairs[0][1])  # key and value are different slices


def test_prefix_encoder_dropout_differs_per_row_in_training():
    torch.manual_seed(0)
    prefix = PrefixEncoder(N, L, H, CONFIG.hidden_size, dropout=0.5).train()
    key, value = prefix(B)[0]
    assert key.shape == (B, H, N, D)
    assert not torch.equal(key[0], key[1]) and not torch.equal(value[1], value[2])
    assert (key == 0).any()  # dropped entries


def test_prefix_encoder_flat_layout_is_layer_key_value():
    """One virtual token's flat vector: [layer 0 key | layer 0 value | layer 1 key | ...], each heads*D."""
    prefix = PrefixEncoder(N, L, H, CONFIG.hidden_size).eval()
    width = 2 * L * CONFIG.hidden_size
    with torch.no_grad():
        prefix.embedding.weight.copy_(torch.arange(N * width, dtype=torch.float32).view(N, width))
    pairs = prefix(2)
    t, h, d = torch.meshgrid(torch.arange(N), torch.arange(H), torch.arange(D), indexing="ij")
    for layer, (key, value) in enumerate(pairs):
        for which, tensor in ((0, key), (1, value)):
            flat = t * width + (2 * layer + which) * CONFIG.hidden_size + h * D + d  # (n, H, D)
            assert torch.equal(tensor[1], flat.permute(1, 0, 2).float()), (layer, which)


# --- SelfAttention with a prefix ------------------------------------------------------------------

def attention_inputs(P=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 6, CONFIG.hidden_size, generator=g)
    attention_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    key = torch.randn(2, H, P, D, generator=g) * 0.1
    value = torch.randn(2, H, P, D, generator=g)
    with_prefix = torch.cat([torch.ones(2, P, dtype=torch.long), attention_mask], dim=1)  # (B, P+T)
    return x, additive_mask(with_prefix), (key, value)


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
def test_attention_with_prefix_keeps_shape_and_every_query_sees_the_prefix(fused):
    torch.manual_seed(0)
    attention = SelfAttention(CONFIG, fused=fused).eval()
    x, mask, (key, value) = attention_inputs()
    huge = torch.zeros_like(value)
    huge[:, 0, :, 0] = 1e4  # head 0, dimension 0
    with torch.no_grad():
        base = attention(x, mask[..., key.shape[2]:])  # the text's part of the mask
        out = attention(x, mask, (key, huge))
    assert out.shape == base.shape == x.shape
    change = (out - base).abs().amax(dim=-1)  # (B, T)
    assert (change > 1.0).all(), change     # padded queries (row 1, last two) included


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
def test_attention_with_prefix_still_ignores_padded_keys(fused):
    torch.manual_seed(0)
    attention = SelfAttention(CONFIG, fused=fused).eval()
    x, mask, prefix = attention_inputs()
    noisy = x.clone()
    noisy[1, 4:] = torch.randn(2, CONFIG.hidden_size) * 10  # the padded tokens of row 1
    with torch.no_grad():
        out, out_noisy = attention(x, mask, prefix), attention(noisy, mask, prefix)
    torch.testing.assert_close(out_noisy[1, :4], out[1, :4], **TOL)
    torch.testing.assert_close(out_noisy[0], out[0], **TOL)


def test_attention_fused_and_explicit_agree_with_prefix_and_padding():
    torch.manual_seed(0)
    attention = SelfAttention(CONFIG).eval()
    x, mask, prefix = attention_inputs()
    with torch.no_grad():
        attention.fused = True
        fused = attention(x, mask, prefix)
        attention.fused = False
        explicit = attention(x, mask, prefix)
    torch.testing.assert_close(fused, explicit, **TOL)


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
def test_empty_prefix_equals_base_encoder(fused):
    torch.manual_seed(0)
    encoder = Encoder(CONFIG, fused=fused).eval()
    ids, mask, types = padded_batch("bert", batch=B)
    empty = [(torch.zeros(B, H, 0, D), torch.zeros(B, H, 0, D)) for _ in range(L)]
    with torch.no_grad():
        base = encoder(input_ids=ids, attention_mask=mask, token_type_ids=types)
        got = encoder(input_ids=ids, attention_mask=mask, token_type_ids=types, prefixes=empty)
        nonempty = encoder(input_ids=ids, attention_mask=mask, token_type_ids=types,
                           prefixes=PrefixEncoder(N, L, H, CONFIG.hidden_size)(B))
    if fused:
        assert torch.equal(got, base)
    else:  # torch.cat makes k contiguous, so BLAS may pick another kernel: last-bit differences only
        torch.testing.assert_close(got, base, atol=1e-6, rtol=0)
    assert not torch.allclose(nonempty, base, atol=1e-3)  # a real prefix does change the output


# --- The fast paths equal the plain ones --------------------------------------------------------

@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
@pytest.mark.parametrize("with_prefix", [False, True], ids=["no-prefix", "prefix"])
def test_only_one_position_in_the_last_layer_equals_the_full_output(fused, with_prefix):
    """`only=i`: the last layer computes position i alone; it must equal row i of the full output."""
    torch.manual_seed(0)
    encoder = Encoder(CONFIG, fused=fused).eval()
    ids, mask, types = padded_batch("bert", batch=B)
    prefixes = PrefixEncoder(N, L, H, CONFIG.hidden_size)(B) if with_prefix else None
    with torch.no_grad():
        full = encoder(input_ids=ids, attention_mask=mask, token_type_ids=types, prefixes=prefixes)
        for i in (0, 4):
            one = encoder(input_ids=ids, attention_mask=mask, token_type_ids=types, prefixes=prefixes, only=i)
            assert one.shape == (B, 1, CONFIG.hidden_size)
            torch.testing.assert_close(one[:, 0], full[:, i], **TOL)


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
def test_no_mask_equals_an_all_ones_mask(fused):
    """A batch without padding may drop its mask (training.to_device does, for flash kernels)."""
    torch.manual_seed(0)
    encoder = Encoder(CONFIG, fused=fused).eval()
    ids = torch.randint(3, 99, (B, 9))
    prefixes = PrefixEncoder(N, L, H, CONFIG.hidden_size)(B)
    with torch.no_grad():
        ones = encoder(input_ids=ids, attention_mask=torch.ones_like(ids), prefixes=prefixes)
        none = encoder(input_ids=ids, attention_mask=None, prefixes=prefixes)
    torch.testing.assert_close(none, ones, **TOL)


def test_cpu_dropout_is_inverted_dropout_at_rate_p():
    """The cheap CPU mask: zeros at rate p, survivors scaled by 1/(1-p), seeded like torch's."""
    x = torch.ones(200_000, requires_grad=True)
    for p in (0.1, 0.5):
        torch.manual_seed(0)
        y = dropout(x, p, training=True)
        dropped = (y == 0).float().mean().item()
        assert abs(dropped - p) < 0.005, (p, dropped)                      # ~450 sigma apart if wrong
        torch.testing.assert_close(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))
        torch.manual_seed(0)
        assert torch.equal(dropout(x, p, training=True), y)                # same seed, same mask
        assert not torch.equal(dropout(x, p, training=True), y)            # next draw, new mask
    y.sum().backward()                                                     # gradient: the mask, scaled
    torch.testing.assert_close(x.grad, y.detach())
    assert torch.equal(dropout(x, 0.1, training=False), x)
    assert torch.equal(dropout(x, 0.0, training=True), x)
    assert not dropout(torch.ones(5), 1.0, training=True).any()


# --- Padding does not change results ------------------------------------------------------------

def alone_and_padded(family):
    """One sentence alone, and the same sentence in a batch beside a longer one (right padded)."""
    pad = 1 if family == "roberta" else 0
    g = torch.Generator().manual_seed(3)
    short, long = torch.randint(3, 99, (6,), generator=g), torch.randint(3, 99, (10,), generator=g)
    types_short = torch.tensor([0, 0, 0, 1, 1, 1]) if family == "bert" else torch.zeros(6, dtype=torch.long)
    alone = dict(input_ids=short[None], attention_mask=torch.ones(1, 6, dtype=torch.long),
                 token_type_ids=types_short[None])
    ids = torch.full((2, 10), pad)
    ids[0, :6], ids[1] = short, long
    mask = torch.zeros(2, 10, dtype=torch.long)
    mask[0, :6], mask[1] = 1, 1
    types = torch.zeros(2, 10, dtype=torch.long)
    types[0, :6] = types_short
    return alone, dict(input_ids=ids, attention_mask=mask, token_type_ids=types)


@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
def test_padding_does_not_change_hidden_states(family, fused, tiny_dirs):
    encoder, _ = load_encoder(tiny_dirs[family], fused=fused)
    alone, batch = alone_and_padded(family)
    with torch.no_grad():
        want = encoder.eval()(**alone)[0]
        got = encoder(**batch)[0, :6]
    torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("method", [
    MethodConfig(method="ptuning", num_virtual_tokens=N),
    MethodConfig(method="ptuning", num_virtual_tokens=N, head_token="first"),
    MethodConfig(method="prefix", num_virtual_tokens=N),
    MethodConfig(method="prefix", num_virtual_tokens=N, prefix_position_shift=True),
    MethodConfig(method="full"),
], ids=["ptuning", "ptuning-first", "prefix", "prefix-shift", "full"])
def test_padding_does_not_change_logits(family, method, tiny_dirs):
    model = load_classifier(tiny_dirs[family], method, 2, seed=0).eval()
    alone, batch = alone_and_padded(family)
    with torch.no_grad():
        want = model(**alone)
        got = model(**batch)
    torch.testing.assert_close(got[:1], want, **TOL)
    assert not torch.equal(got[0], got[1])  # the rows are different sentences


# --- What trains ---------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("method", ["ptuning", "prompt", "prefix"])
def test_prompt_methods_keep_the_encoder_frozen(family, method, tiny_dirs):
    model = load_classifier(tiny_dirs[family], MethodConfig(method=method, num_virtual_tokens=N), 2, seed=0)
    ids, mask, types = padded_batch(family)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-1, weight_decay=0.01)
    loss = torch.nn.functional.cross_entropy(model(ids, mask, types), torch.tensor([0, 1, 1]))
    loss.backward()
    encoder_params = [(name, p) for name, p in model.named_parameters() if name.startswith("encoder.")]
    assert encoder_params
    for name, p in encoder_params:
        assert not p.requires_grad and p.grad is None, name
    optimizer.step()

    prompt_module = "prefix_encoder." if method == "prefix" else "prompt_encoder."
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert not any(name.startswith("encoder.") for name in changed), sorted(changed)
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert name.startswith((prompt_module, "head.")), name
    assert any(name.startswith(prompt_module) for name in changed)
    assert any(name.startswith("head.") for name in changed)
    # BERT's pooler comes pretrained with the checkpoint: it stays frozen too
    pooler = [name for name in before if name.startswith("head.pooler.")]
    assert bool(pooler) == (family == "bert")
    assert not set(pooler) & changed
    assert all(not p.requires_grad for name, p in model.named_parameters() if name in pooler)


@pytest.mark.parametrize("family", ["roberta", "bert"])
def test_full_finetuning_trains_everything(family, tiny_dirs):
    model = load_classifier(tiny_dirs[family], MethodConfig(method="full"), 2)
    assert all(p.requires_grad for p in model.parameters())
    assert model.trainable_names() == [name for name, _ in model.named_parameters()]


def test_pretrained_pooler_frozen_fresh_pooler_trains(tiny_dirs):
    bert = load_classifier(tiny_dirs["bert"], MethodConfig(method="prefix", num_virtual_tokens=N), 2)
    checkpoint_pooler = tiny_hf_model("bert").bert.pooler.dense.weight
    assert torch.equal(bert.head.pooler.weight, checkpoint_pooler)
    assert not bert.head.pooler.weight.requires_grad and not bert.head.pooler.bias.requires_grad
    assert bert.head.classifier.weight.requires_grad

    roberta = load_classifier(tiny_dirs["roberta"], MethodConfig(method="prefix", num_virtual_tokens=N,
                                                                 head="pooler"), 2)
    assert roberta.head.pooler.weight.requires_grad and roberta.head.pooler.bias.requires_grad
    assert roberta.head.classifier.weight.requires_grad


# --- P-tuning v1 template ------------------------------------------------------------------------

TEMPLATE = "[P*2] {a} [P*2] {b}"
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "."]


@pytest.fixture
def bert_with_vocab(tiny_dirs, tmp_path):
    folder = tmp_path / "bert"
    shutil.copytree(tiny_dirs["bert"], folder)
    (folder / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    return folder


def test_template_prompts_are_spliced_into_the_slots(bert_with_vocab):
    method = MethodConfig(method="ptuning", num_virtual_tokens=4, template=TEMPLATE)
    model = load_classifier(bert_with_vocab, method, 2, seed=0).eval()
    tokenizer = Tokenizer.from_folder(bert_with_vocab, reserved_positions=4, template=TEMPLATE)
    from ptuning.text.tokenizer import collate

    batch = collate(tokenizer.encode_batch([("the cat sat", "a dog ran ."), ("the mat", "a cat")]), tokenizer.pad_id)
    ids, mask, types = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
    assert model.head_index == 0
    assert (ids == PROMPT_SLOT).sum(dim=1).tolist() == [4, 4]
    with torch.no_grad():
        logits = model(ids, mask, types)
        embeds, mask2, types2 = model.splice_prompts(ids, mask, types)
        prompts = model.prompt_encoder()
        hidden = model.encoder(inputs_embeds=embeds, attention_mask=mask2, token_type_ids=types2)
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()
    assert torch.equal(mask2, mask) and torch.equal(types2, types)  # a template adds nothing itself
    slots = ids == PROMPT_SLOT
    for row in range(2):
        torch.testing.assert_close(embeds[row][slots[row]], prompts, rtol=0, atol=0)
        torch.testing.assert_close(embeds[row][~slots[row]], model.encoder.embeddings.word(ids[row][~slots[row]]))
    torch.testing.assert_close(logits, model.head(hidden[:, 0]), **TOL)  # the head reads index 0 ([CLS])
    assert not torch.allclose(logits, model.head(hidden[:, 1]), atol=1e-4)


# --- Low precision -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("method", ["ptuning", "prefix"])
def test_low_precision_encoder_fp32_prompts_and_head(dtype, method, tiny_dirs):
    config = MethodConfig(method=method, num_virtual_tokens=N)
    low = load_classifier(tiny_dirs["roberta"], config, 2, dtype=dtype, seed=0).eval()
    full = load_classifier(tiny_dirs["roberta"], config, 2, seed=0).eval()
    assert all(p.dtype == dtype for p in low.encoder.parameters())
    prompt_module = low.prefix_encoder if method == "prefix" else low.prompt_encoder
    assert all(p.dtype == torch.float32 for p in [*prompt_module.parameters(), *low.head.parameters()])
    # same seed: same fresh prompts; the same head (see the head-dtype test below), so only the
    # encoder's precision differs
    for (name, a), b in zip(prompt_module.state_dict().items(), (full.prefix_encoder if method == "prefix"
                                                                else full.prompt_encoder).state_dict().values()):
        assert torch.equal(a, b), name
    low.head.load_state_dict(full.head.state_dict())
    # scale the head up so that a logit error is visible at the tolerance
    with torch.no_grad():
        for model in (low, full):
            model.head.out_proj.weight.mul_(50)
    ids, mask, _ = padded_batch("roberta")
    with torch.no_grad():
        got, want = low(ids, mask), full(ids, mask)
        got_hidden = low.encoder(input_ids=ids, attention_mask=mask)
        want_hidden = full.encoder(input_ids=ids, attention_mask=mask)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    assert got_hidden.dtype == dtype
    assert want.abs().max() > 0.2
    torch.testing.assert_close(got, want, atol=5e-2, rtol=0)
    real = mask.bool()
    torch.testing.assert_close(got_hidden.float()[real], want_hidden[real], atol=5e-2, rtol=0)


@pytest.mark.parametrize("family", ["roberta", "bert"])
def test_checkpoint_head_keeps_full_precision_when_encoder_is_bf16(family, tiny_dirs):
    low = load_classifier(tiny_dirs[family], MethodConfig(), 2, dtype=torch.bfloat16)
    full = load_classifier(tiny_dirs[family], MethodConfig(), 2)
    # the roberta head's dense + out_proj, the bert pooler + classifier: all from the checkpoint
    for (name, a), b in zip(low.head.state_dict().items(), full.head.state_dict().values()):
        assert a.dtype == torch.float32
        assert torch.equal(a, b), name


# --- Parameter counts ----------------------------------------------------------------------------

ROBERTA_LARGE = EncoderConfig(model_type="roberta", hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                              intermediate_size=4096, vocab_size=50265, max_position_embeddings=514,
                              type_vocab_size=1, pad_token_id=1, layer_norm_eps=1e-5)


def test_roberta_large_parameter_report_on_meta():
    model = build_classifier(ROBERTA_LARGE, MethodConfig(), 2, device="meta")
    assert all(p.is_meta for p in model.parameters())
    assert parameter_report(model) == "trainable params: 1,351,938 || all params: 355,662,082 || trainable%: 0.3801"


def test_parameter_counts_match_peft(tiny_dirs):
    """peft keeps the frozen original classifier beside its trainable copy (`modules_to_save`); its
    total counts both. Ours holds one head, so: ours == peft's total minus the frozen original.

    Version-dependent: the `.original_module.` copy and its double count are peft's as of 0.21 (the
    bound pinned in setup.cfg's test extra)."""
    import peft

    theirs = peft.get_peft_model(tiny_hf_model("roberta"), peft.PromptEncoderConfig(
        task_type="SEQ_CLS", num_virtual_tokens=5, encoder_hidden_size=16))
    their_trainable, their_total = theirs.get_nb_trainable_parameters()
    duplicate = sum(p.numel() for name, p in theirs.named_parameters() if ".original_module." in name)
    assert duplicate == 32 * 32 + 32 + 2 * 32 + 2  # dense + out_proj of the tiny head

    ours = load_classifier(tiny_dirs["roberta"], MethodConfig(num_virtual_tokens=5, encoder_hidden_size=16), 2)
    report = parameter_report(ours)
    assert f"trainable params: {their_trainable:,d} " in report
    assert f"all params: {their_total - duplicate:,d} " in report


# --- Validation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(method="lora"), "method must be one of"),
    (dict(head_token="last"), "head_token"),
    (dict(num_virtual_tokens=0), "num_virtual_tokens"),
    (dict(method="prefix", num_virtual_tokens=0), "num_virtual_tokens"),
    (dict(method="prefix", template="[P*20] {a}"), "template"),
])
def test_method_config_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MethodConfig(**kwargs)


def test_method_config_accepts_full_without_virtual_tokens():
    assert MethodConfig(method="full", num_virtual_tokens=0).positions_used == 0


@pytest.mark.parametrize("family, max_tokens", [("bert", 64), ("roberta", 62)])
def test_too_many_virtual_tokens_for_the_position_table(family, max_tokens):
    config = EncoderConfig(**{k: v for k, v in TINY.items()}, model_type=family,
                           pad_token_id=1 if family == "roberta" else 0)
    assert config.max_tokens == max_tokens
    encoder = Encoder(config)
    with pytest.raises(ValueError, match=f"{max_tokens} positions"):
        classifier(encoder, MethodConfig(num_virtual_tokens=max_tokens))
    with pytest.raises(ValueError, match="positions"):
        classifier(encoder, MethodConfig(method="prefix", num_virtual_tokens=max_tokens,
                                        prefix_position_shift=True))
    classifier(encoder, MethodConfig(num_virtual_tokens=max_tokens - 1))  # one text token fits
