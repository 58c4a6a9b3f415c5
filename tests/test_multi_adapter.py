"""A mixed batch over one backbone gives every row the logits of its adapter run alone."""
import pytest
import torch

from ptuning.loader import load_encoder
from ptuning.model import MethodConfig, PromptClassifier, mark_trainable
from ptuning.multi import AdapterBank

ADAPTERS = {
    "v1-first": (MethodConfig(method="ptuning", num_virtual_tokens=3, encoder_hidden_size=8, head_token="first"), 2),
    "v1-cls": (MethodConfig(method="ptuning", num_virtual_tokens=6, encoder_hidden_size=8, reparam="lstm"), 3),
    "prompt": (MethodConfig(method="prompt", num_virtual_tokens=2), 2),
    "prefix": (MethodConfig(method="prefix", num_virtual_tokens=4), 2),
    "prefix-shift": (MethodConfig(method="prefix", num_virtual_tokens=7, prefix_projection=True,
                                  prefix_hidden_size=8, prefix_position_shift=True), 1),
}


@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
def test_mixed_batch_equals_each_adapter_alone(family, fused, tiny_dirs):
    encoder, _ = load_encoder(tiny_dirs[family], fused=fused)
    torch.manual_seed(0)
    adapters = {}
    for name, (method, labels) in ADAPTERS.items():
        adapters[name] = PromptClassifier(encoder, method, labels)
        mark_trainable(adapters[name], pooler_pretrained=False)
    bank = AdapterBank(adapters).eval()
    ids = torch.randint(3, 99, (10, 9), generator=torch.Generator().manual_seed(3))
    mask = torch.stack([(torch.arange(9) < 9 - row % 6).long() for row in range(10)])  # lengths 9..4, padded
    ids[mask == 0] = 1 if family == "roberta" else 0
    types = torch.zeros_like(ids) if family == "roberta" else (torch.arange(9) >= 4).long().expand(10, 9) * mask
    names = [list(ADAPTERS)[i % len(ADAPTERS)] for i in (0, 1, 2, 3, 4, 3, 1, 0, 4, 2)]
    mixed = bank(ids, mask, types, names)
    for row, name in enumerate(names):
        alone = adapters[name].eval()(ids[row:row + 1], mask[row:row + 1], types[row:row + 1])[0]
        torch.testing.assert_close(mixed[row], alone, atol=1e-5, rtol=1e-5, msg=f"row {row} ({name})")


def test_bank_rejects_full_finetuning_and_templates(tiny_dirs):
    encoder, _ = load_encoder(tiny_dirs["bert"])
    with pytest.raises(ValueError, match="full fine-tuning"):
        AdapterBank({"f": PromptClassifier(encoder, MethodConfig(method="full"), 2)})
    with pytest.raises(ValueError, match="template"):
        AdapterBank({"t": PromptClassifier(encoder, MethodConfig(num_virtual_tokens=2, template="[P*2] {a}"), 2)})
