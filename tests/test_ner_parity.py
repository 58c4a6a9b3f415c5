"""Token classification against transformers and peft (TOKEN_CLS), on tiny random models whose
biases and LayerNorms are all randomised (conftest.randomize_biases_and_norms)."""
import pytest
import torch
from conftest import padded_batch, tiny_hf_model

from ptuning.model import MethodConfig, load_model
from ptuning.tasks import ner

TOL = dict(atol=1e-5, rtol=1e-5)
LABELS = 5
N = 4  # virtual tokens


def token_model(folder, method, fused=True):
    return load_model(folder, method, lambda c: ner.head(c, method, LABELS), fused=fused).eval()


@pytest.fixture(scope="module")
def token_dirs(tmp_path_factory):
    """family -> folder of a saved tiny `*ForTokenClassification`."""
    dirs = {}
    for family in ("roberta", "bert"):
        folder = tmp_path_factory.mktemp(f"tiny_token_{family}")
        tiny_hf_model(family, LABELS, kind="token").save_pretrained(folder, safe_serialization=True)
        dirs[family] = folder
    return dirs


def peft_token_model(family, peft_config):
    import peft

    return peft.get_peft_model(tiny_hf_model(family, LABELS, kind="token"), peft_config).eval()


def inputs(family):
    ids, mask, types = padded_batch(family)
    return ids, mask, (types if family == "bert" else None)


def test_tiny_models_have_random_norms_and_biases(token_dirs):
    hf = tiny_hf_model("bert", LABELS, kind="token")
    norm = hf.bert.encoder.layer[0].attention.output.LayerNorm
    assert not torch.allclose(norm.weight, torch.ones_like(norm.weight))
    assert not torch.allclose(hf.classifier.bias, torch.zeros_like(hf.classifier.bias))


@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
def test_full_token_logits_match_transformers(family, fused, token_dirs):
    """Every position of a padded batch, the classifier loaded through our key table."""
    hf = tiny_hf_model(family, LABELS, kind="token")
    ours = token_model(token_dirs[family], MethodConfig(method="full"), fused)
    ids, mask, types = inputs(family)
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        got = ours(ids, mask, types)
    assert got.shape == want.shape == (*ids.shape, LABELS)
    torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("projection", [True, False], ids=["projection", "no-projection"])
def test_prefix_token_logits_match_peft(family, projection, token_dirs):
    """peft PREFIX_TUNING, TOKEN_CLS: its logits are aligned with the text, like ours."""
    import peft

    theirs = peft_token_model(family, peft.PrefixTuningConfig(task_type="TOKEN_CLS", num_virtual_tokens=N,
                                                              prefix_projection=projection, encoder_hidden_size=16))
    method = MethodConfig(method="prefix", num_virtual_tokens=N, prefix_projection=projection,
                          prefix_hidden_size=16, prefix_position_shift=True)
    ours = token_model(token_dirs[family], method)
    ours.prefix_encoder.load_state_dict(theirs.prompt_encoder["default"].state_dict())
    ids, mask, types = inputs(family)
    kwargs = dict(token_type_ids=types) if types is not None else {}
    with torch.no_grad():
        want = theirs(input_ids=ids, attention_mask=mask, **kwargs).logits
        got = ours(ids, mask, types)
    assert want.shape == got.shape == (*ids.shape, LABELS)
    torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("method_name", ["ptuning", "prompt"])
def test_v1_token_logits_match_peft_on_text_positions(family, method_name, token_dirs):
    """peft P_TUNING / PROMPT_TUNING, TOKEN_CLS, prepend the virtual tokens and return logits for
    them too, (B, n + T, C); ours drop them, (B, T, C). The text positions agree."""
    import peft

    config = (peft.PromptEncoderConfig(task_type="TOKEN_CLS", num_virtual_tokens=N, encoder_hidden_size=16)
              if method_name == "ptuning" else peft.PromptTuningConfig(task_type="TOKEN_CLS", num_virtual_tokens=N))
    theirs = peft_token_model(family, config)
    method = MethodConfig(method=method_name, num_virtual_tokens=N, encoder_hidden_size=16)
    ours = token_model(token_dirs[family], method)
    ours.prompt_encoder.load_state_dict(theirs.prompt_encoder["default"].state_dict())
    ids, mask, types = inputs(family)
    kwargs = dict(token_type_ids=types) if types is not None else {}
    with torch.no_grad():
        want = theirs(input_ids=ids, attention_mask=mask, **kwargs).logits
        got = ours(ids, mask, types)
    assert want.shape == (ids.shape[0], N + ids.shape[1], LABELS)
    assert got.shape == (*ids.shape, LABELS)
    torch.testing.assert_close(got, want[:, N:], **TOL)


def test_v1_prompts_do_not_shift_labels(token_dirs):
    """peft issue #1974: with v1 prompts in front, peft passes the labels through unshifted, so
    label t meets the logits of position t of [prompts; text], n tokens early. Ours drops the
    prompt rows before the head, so label t meets word t's own token: our loss equals the loss
    on peft's text positions, and differs from the loss peft's unshifted labels would give."""
    import peft

    theirs = peft_token_model("bert", peft.PromptEncoderConfig(task_type="TOKEN_CLS", num_virtual_tokens=N,
                                                               encoder_hidden_size=16))
    method = MethodConfig(method="ptuning", num_virtual_tokens=N, encoder_hidden_size=16)
    ours = token_model(token_dirs["bert"], method)
    ours.prompt_encoder.load_state_dict(theirs.prompt_encoder["default"].state_dict())
    ids, mask, types = padded_batch("bert")
    labels = torch.randint(0, LABELS, ids.shape, generator=torch.Generator().manual_seed(3))
    labels[:, 0] = labels[mask == 0] = ner.IGNORE  # [CLS] and padding carry no label
    batch = {"labels": labels}
    with torch.no_grad():
        their_logits = theirs(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        our_loss = ner.loss(ours(ids, mask, types), batch)
    torch.testing.assert_close(our_loss, ner.loss(their_logits[:, N:], batch), **TOL)
    unshifted = ner.loss(their_logits[:, :ids.shape[1]], batch)
    assert abs(unshifted - our_loss) > 1e-3
