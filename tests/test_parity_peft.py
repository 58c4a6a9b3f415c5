"""P-tuning v1 and v2 against peft: copy peft's prompt/prefix weights into ours, same logits/gradients.

Version-dependent: peft's module layout (`prompt_encoder["default"]`, `modules_to_save["default"]`) and
transformers' prefix position shift are asserted as of transformers 4.40-5.23 and peft 0.10-0.21, the
ranges pinned in setup.cfg's test extra.
"""
import pytest
import torch
from conftest import padded_batch, tiny_hf_model

from ptuning.model import MethodConfig, load_classifier

N = 5  # virtual tokens
V1_CONFIGS = {"mlp": dict(encoder_reparameterization_type="MLP"),
              "lstm": dict(encoder_reparameterization_type="LSTM")}


def peft_model(family, peft_config):
    import peft

    return peft.get_peft_model(tiny_hf_model(family), peft_config)


def compare(family, theirs, ours, prompt_module_name):
    """Copy their prompt weights into ours, then compare logits and the prompt gradients."""
    peft_encoder = theirs.prompt_encoder["default"]
    own = getattr(ours, prompt_module_name)
    own.load_state_dict(peft_encoder.state_dict())  # same names, same shapes: a mismatch raises
    # peft trains a copy of the classifier; both start from the checkpoint's weights.
    torch.testing.assert_close(ours.head.state_dict()["out_proj.weight" if family == "roberta" else "classifier.weight"],
                               theirs.base_model.classifier.modules_to_save["default"].state_dict()[
                                   "out_proj.weight" if family == "roberta" else "weight"])
    theirs.eval(), ours.eval()
    ids, mask, types = padded_batch(family)
    labels = torch.tensor([0, 1, 1])
    kwargs = dict(token_type_ids=types) if family == "bert" else {}
    their_out = theirs(input_ids=ids, attention_mask=mask, labels=labels, **kwargs)
    our_logits = ours(ids, mask, types if family == "bert" else None)
    torch.testing.assert_close(our_logits, their_out.logits, atol=1e-5, rtol=1e-5)

    their_out.loss.backward()
    torch.nn.functional.cross_entropy(our_logits, labels).backward()
    their_grads = dict(peft_encoder.named_parameters())
    for name, p in own.named_parameters():
        torch.testing.assert_close(p.grad, their_grads[name].grad, atol=1e-4, rtol=1e-4, msg=name)


@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("reparam", ["mlp", "lstm"])
def test_ptuning_v1_matches_peft(family, reparam, tiny_dirs):
    import peft

    theirs = peft_model(family, peft.PromptEncoderConfig(task_type="SEQ_CLS", num_virtual_tokens=N,
                                                         encoder_hidden_size=16, **V1_CONFIGS[reparam]))
    method = MethodConfig(method="ptuning", num_virtual_tokens=N, encoder_hidden_size=16, reparam=reparam,
                          head_token="first")  # peft's head reads position 0, a virtual token (peft <0.22)
    compare(family, theirs, load_classifier(tiny_dirs[family], method, 2), "prompt_encoder")


@pytest.mark.parametrize("family", ["roberta", "bert"])
def test_prompt_tuning_matches_peft(family, tiny_dirs):
    import peft

    theirs = peft_model(family, peft.PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=N))
    method = MethodConfig(method="prompt", num_virtual_tokens=N, head_token="first")
    compare(family, theirs, load_classifier(tiny_dirs[family], method, 2), "prompt_encoder")


@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("projection", [True, False], ids=["projection", "no-projection"])
def test_prefix_tuning_matches_peft(family, projection, tiny_dirs):
    """transformers + peft number the text's positions after the prefix: match with the shift.

    Version-dependent: transformers (4.x through 5.23, the bound in setup.cfg) treats a prefix as a cache."""
    import peft

    theirs = peft_model(family, peft.PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=N,
                                                        prefix_projection=projection, encoder_hidden_size=16))
    method = MethodConfig(method="prefix", num_virtual_tokens=N, prefix_projection=projection,
                          prefix_hidden_size=16, prefix_position_shift=True)
    compare(family, theirs, load_classifier(tiny_dirs[family], method, 2), "prefix_encoder")


@pytest.mark.parametrize("family", ["roberta", "bert"])
def test_prefix_default_positions_differ_from_peft_shift(family, tiny_dirs):
    """Our default keeps the text at the positions it has without a prefix; the shift moves it."""
    ids, mask, types = padded_batch(family)
    logits = []
    for shift in (False, True):
        torch.manual_seed(0)
        model = load_classifier(tiny_dirs[family], MethodConfig(method="prefix", num_virtual_tokens=N,
                                                                prefix_position_shift=shift), 2).eval()
        logits.append(model(ids, mask, types))
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)
