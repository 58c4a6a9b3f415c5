"""Our encoder and heads against transformers, on tiny random models saved as safetensors."""
import pytest
import torch
from conftest import padded_batch, tiny_hf_model

from ptuning.weights import load_encoder
from ptuning.model import MethodConfig, load_classifier

TOL = dict(atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
def test_hidden_states_match_transformers(family, fused, tmp_path):
    hf = tiny_hf_model(family, task=False)
    hf.save_pretrained(tmp_path, safe_serialization=True)
    encoder, _ = load_encoder(tmp_path, fused=fused)
    ids, mask, types = padded_batch(family)
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        got = encoder.eval()(input_ids=ids, attention_mask=mask, token_type_ids=types)
    torch.testing.assert_close(got, want, **TOL)  # padded positions included


@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
@pytest.mark.parametrize("num_labels", [2, 1], ids=["classes", "regression"])
def test_logits_match_transformers(family, fused, num_labels, tmp_path):
    hf = tiny_hf_model(family, num_labels=num_labels)
    hf.save_pretrained(tmp_path, safe_serialization=True)
    ours = load_classifier(tmp_path, MethodConfig(method="full"), num_labels, fused=fused).eval()
    ids, mask, types = padded_batch(family)
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        got = ours(ids, mask, types)
    assert got.shape == (3, num_labels)
    torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("family", ["roberta", "bert"])
def test_fused_and_explicit_attention_agree_in_training_mode(family, tiny_dirs):
    """Same dropout-free numbers, and both paths take gradients to the prompts alike."""
    ids, mask, types = padded_batch(family)
    results = []
    for fused in (True, False):
        torch.manual_seed(1)
        model = load_classifier(tiny_dirs[family], MethodConfig(method="prefix", prefix_projection=True,
                                                                prefix_hidden_size=8), 2, fused=fused).train()
        model.encoder.eval()  # no dropout inside the encoder; the rest trains
        model(ids, mask, types).sum().backward()
        results.append((model(ids, mask, types), model.prefix_encoder.embedding.weight.grad))
    torch.testing.assert_close(results[0][0], results[1][0], **TOL)
    torch.testing.assert_close(results[0][1], results[1][1], atol=1e-5, rtol=1e-4)


def test_minilm_matches_transformers_on_mrpc(minilm_dir, glue_dir):
    """The real checkpoint, real sentences, our tokenizer against transformers' tokenizer."""
    import transformers as tf

    from ptuning.tasks.glue import read_glue
    from ptuning.text.tokenizer import Tokenizer, collate

    examples = read_glue("mrpc", "dev", glue_dir)[:16]
    pairs = [(e.text_a, e.text_b) for e in examples]
    hf_tok = tf.AutoTokenizer.from_pretrained(minilm_dir)
    want_ids = hf_tok([a for a, _ in pairs], [b for _, b in pairs], truncation=True, max_length=512)
    tok = Tokenizer.from_folder(minilm_dir)
    encoded = [tok.encode(a, b) for a, b in pairs]
    assert [e.ids for e in encoded] == want_ids["input_ids"]
    assert [e.type_ids for e in encoded] == want_ids["token_type_ids"]

    batch = collate(encoded, pad_id=tok.pad_id)
    hf = tf.BertModel.from_pretrained(minilm_dir).eval()
    with torch.no_grad():
        want = hf(**{k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}).last_hidden_state
        for fused in (True, False):
            encoder, _ = load_encoder(minilm_dir, fused=fused)
            got = encoder.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                 token_type_ids=batch["token_type_ids"])
            real = batch["attention_mask"].bool()
            torch.testing.assert_close(got[real], want[real], atol=1e-4, rtol=1e-4)
