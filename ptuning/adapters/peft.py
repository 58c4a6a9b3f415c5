"""peft adapter folders, read and written by hand: peft itself is never imported.

What `PeftModel.save_pretrained` writes for a prompt method on a sequence-classification model:

    adapter_config.json        {"peft_type": "PREFIX_TUNING", "task_type": "SEQ_CLS", "num_virtual_tokens": 20,
                                "token_dim": 768, "num_layers": 12, "num_attention_heads": 12,
                                "base_model_name_or_path": "roberta-large", "inference_mode": true, …}
    adapter_model.safetensors  prompt_embeddings                  (n, h) v1 / prompt tuning; (n, 2·layers·h) prefix
                               base_model.classifier.…            the trained head (peft's `modules_to_save`)
                               base_model.bert.pooler.dense.…     only when "pooler" was in modules_to_save
    (older peft, or safe_serialization=False: adapter_model.bin, a pickled dict of the same tensors)

On a question-answering model (task_type QUESTION_ANS) the head is `base_model.qa_outputs.{weight,bias}`
and becomes our `SpanHead` (task squad). peft does not move QA start/end positions past v1 prompts
(its issue #1974); our model drops the prompt rows, so loaded v1 QA adapters score text positions.

peft saves a prompt method's *outputs*, never its reparameterization: the P-tuning MLP/LSTM and
the prefix projection are gone, and peft refuses to load a prompt adapter as trainable. So a peft
adapter is an inference artifact, and maps onto our methods without reparameterization:

    peft            ours                                                   prompt_embeddings ->
    P_TUNING        prompt, head_token first                               prompt_encoder.embedding.weight
    PROMPT_TUNING   prompt, head_token first                               prompt_encoder.embedding.weight
    PREFIX_TUNING   prefix, no projection, prefix_position_shift           prefix_encoder.embedding.weight

The head keys are the base model's own (`weights.HEAD_TABLE`) behind "base_model.".

Token classification (peft task_type TOKEN_CLS, our token head, `tasks/ner.py`): the head is
`*ForTokenClassification`'s `classifier` for both families. peft puts P_TUNING / PROMPT_TUNING
prompts in front and returns logits for them too, (B, n + T, C); ours drops those rows, so the
text positions are what match (tests/test_ner_parity.py), and which token a head reads does not
arise: every v1 adapter exports.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import OptionError, WriteError
from .files import ADAPTER_CONFIG, ADAPTER_WEIGHTS, AdapterConfig, AdapterError, atomic_write, read_adapter, write_json
from ..config import EncoderConfig
from ..weights import HEAD_TABLE, map_keys, resolve_model_dir
from .. import tasks
from ..heads import TokenHead
from ..model import MethodConfig, PromptModel, load_model, prompt_module
from ..prompts import PrefixEncoder, PromptEncoder

PEFT_WEIGHTS_BIN = "adapter_model.bin"
SUPPORTED_TYPES = ("P_TUNING", "PROMPT_TUNING", "PREFIX_TUNING")
TASK_TYPES = ("SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS")  # what loads
SPAN_HEAD = ["qa_outputs.weight", "qa_outputs.bias"]  # QUESTION_ANS: heads.SpanHead
PROMPT_KEY = "prompt_embeddings"
PEFT_PREFIX = "base_model."          # a prompt method's PeftModel holds the transformers model as `base_model`
HF_MODEL_PREFIX = {"bert": "bert.", "roberta": "roberta."}  # base_model_prefix of the HF task classes
HEAD_TO_HF = {ours: theirs for theirs, ours in HEAD_TABLE.items()}  # "out_proj.weight" -> "classifier.out_proj.weight"
# The head the HF task model of each family has; peft trains a copy of it.
FAMILY_HEAD = {"roberta": "roberta", "bert": "pooler"}
HEAD_WORDS = {"SEQ_CLS": "sequence", "TOKEN_CLS": "token", "QUESTION_ANS": "span"}  # for messages
EXPORT_TASK_TYPES = ("SEQ_CLS", "TOKEN_CLS")  # what export writes (a task family's PEFT_TASK_TYPE)


def classifier_names(family: str, task_type: str = "SEQ_CLS") -> list[str]:
    """Our head's parameters that peft always carries (the pooler only when it trained)."""
    modules = ("dense", "out_proj") if FAMILY_HEAD[family] == "roberta" and task_type == "SEQ_CLS" else ("classifier",)
    return [f"{m}.{p}" for m in modules for p in ("weight", "bias")]


def peft_key(name: str, family: str) -> str:
    """Our head parameter -> peft's key: "out_proj.weight" -> "base_model.classifier.out_proj.weight"."""
    theirs = HEAD_TO_HF[name]
    if name.startswith("pooler."):  # inside the task model's encoder: bert.pooler
        theirs = HF_MODEL_PREFIX[family] + theirs
    return PEFT_PREFIX + theirs


def check_export_target(out_dir: Path, overwrite: bool) -> None:
    """Nothing the user owns is overwritten: a training run never, a peft folder only with overwrite."""
    blocker = next((p for p in (out_dir, *out_dir.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise WriteError(f"{out_dir}: {blocker} is a file, not a folder; the export writes a folder")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return  # new (or empty)
    if (out_dir / ADAPTER_CONFIG).is_file() and not is_peft_adapter(out_dir) or (out_dir / "training_state.pt").exists():
        raise AdapterError(f"{out_dir}: holds an adapter of ours (a training run); refusing to overwrite it "
                           "with a peft export; choose another folder")
    others = sorted(p.name for p in out_dir.iterdir() if p.name not in (ADAPTER_CONFIG, ADAPTER_WEIGHTS, "README.md"))
    if others or not is_peft_adapter(out_dir):
        raise OptionError(f"{out_dir}: not empty and not a peft adapter folder (holds {', '.join(others[:5]) or 'other files'}); "
                          "choose a new or empty folder")
    if not overwrite:
        raise OptionError(f"{out_dir}: already holds a peft adapter; pass --overwrite to replace it")


# --- reading ---------------------------------------------------------------------------------
def is_peft_adapter(adapter_dir: str | Path) -> bool:
    """True when the folder's adapter_config.json was written by peft (it names a peft_type)."""
    path = Path(adapter_dir) / ADAPTER_CONFIG
    try:
        return "peft_type" in json.loads(path.read_text())
    except (OSError, ValueError, TypeError):
        return False  # missing or unreadable: our own reader reports it


def read_peft_adapter(adapter_dir: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(adapter_config.json, tensors); safetensors preferred, a .bin only if weights_only can read it."""
    adapter_dir = Path(adapter_dir)
    config_path = adapter_dir / ADAPTER_CONFIG
    try:
        config = json.loads(config_path.read_text())
    except OSError as err:
        raise AdapterError(f"{config_path}: cannot read ({err.strerror or err})") from None
    except json.JSONDecodeError as err:
        raise AdapterError(f"{config_path}: not valid JSON ({err})") from None
    safetensors, pickled = adapter_dir / ADAPTER_WEIGHTS, adapter_dir / PEFT_WEIGHTS_BIN
    if safetensors.is_file():
        try:
            return config, load_file(safetensors)
        except Exception as err:
            raise AdapterError(f"{safetensors}: cannot read safetensors file, truncated or corrupt? ({err})") from None
    if pickled.is_file():
        try:  # weights_only: tensors and plain containers, never arbitrary code
            tensors = torch.load(pickled, map_location="cpu", weights_only=True)
        except Exception as err:
            raise AdapterError(f"{pickled}: cannot be read safely with torch.load(weights_only=True) ({err}); "
                               "re-save it with save_pretrained(safe_serialization=True)") from None
        if not isinstance(tensors, dict) or not all(isinstance(t, torch.Tensor) for t in tensors.values()):
            raise AdapterError(f"{pickled}: not a dict of tensors")
        return config, tensors
    raise AdapterError(f"{adapter_dir}: peft adapter without {ADAPTER_WEIGHTS} or {PEFT_WEIGHTS_BIN}")


def _field(config: dict, name: str, source: Path):
    if config.get(name) is None:
        raise AdapterError(f"{source}: field {name!r} is missing")
    return config[name]


def method_from_peft(config: dict, source: Path) -> MethodConfig:
    """Our method for a peft adapter config (the one that gives the same logits)."""
    peft_type, task_type = config.get("peft_type"), config.get("task_type")
    if peft_type not in SUPPORTED_TYPES:
        raise AdapterError(f"{source}: peft_type {peft_type!r} is not supported; supported: {', '.join(SUPPORTED_TYPES)}")
    if task_type not in TASK_TYPES:
        raise AdapterError(f"{source}: task_type {task_type!r} is not supported; supported: SEQ_CLS (sequence "
                           "classification), TOKEN_CLS (token classification), QUESTION_ANS (extractive "
                           "question answering)")
    if config.get("num_transformer_submodules", 1) != 1:
        raise AdapterError(f"{source}: num_transformer_submodules {config['num_transformer_submodules']} "
                           "(encoder-decoder); an encoder has 1")
    n = _field(config, "num_virtual_tokens", source)
    try:
        if peft_type == "PREFIX_TUNING":
            # No projection: peft saved the projected prefix. Positions shift as transformers does it.
            return MethodConfig(method="prefix", num_virtual_tokens=n, prefix_position_shift=True)
        # P_TUNING's MLP/LSTM outputs were saved; peft's head reads position 0, the first virtual token.
        return MethodConfig(method="prompt", num_virtual_tokens=n, head_token="first")
    except ValueError as err:  # e.g. num_virtual_tokens 0 or "4": MethodConfig names the field
        raise AdapterError(f"{source}: field {err}") from None


def check_fits(config: dict, encoder: EncoderConfig, source: Path) -> None:
    """The adapter's recorded base shape must be the base model's."""
    expected = {"token_dim": encoder.hidden_size, "num_layers": encoder.num_hidden_layers,
                "num_attention_heads": encoder.num_attention_heads}
    required = ("token_dim", "num_layers", "num_attention_heads") if config["peft_type"] == "PREFIX_TUNING" \
        else ("token_dim",)
    for name, value in expected.items():
        stated = _field(config, name, source) if name in required else config.get(name)
        if stated is not None and (isinstance(stated, bool) or not isinstance(stated, int)):
            raise AdapterError(f"{source}: field {name!r} must be an integer, not {stated!r}")
        if stated is not None and stated != value:
            raise AdapterError(f"{source}: field {name!r} is {stated}, but the base model has {value} "
                               f"(hidden_size {encoder.hidden_size}, {encoder.num_hidden_layers} layers, "
                               f"{encoder.num_attention_heads} heads); was it trained on another base model?")


def split_tensors(tensors: dict[str, torch.Tensor], family: str, source: Path, task_type: str = "SEQ_CLS"
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """peft's tensors -> (prompt_embeddings, head tensors in our head's names)."""
    if PROMPT_KEY not in tensors:
        raise AdapterError(f"{source}: tensor {PROMPT_KEY!r} is missing (found: {sorted(tensors)})")
    others = {}
    for key, tensor in tensors.items():
        if key != PROMPT_KEY:
            if not key.startswith(PEFT_PREFIX):
                raise AdapterError(f"{source}: unexpected tensor {key!r}")
            others[key.removeprefix(PEFT_PREFIX)] = tensor
    encoder_part, head, unexpected = map_keys(others)  # the base model's own key table
    if encoder_part or unexpected:
        bad = [PEFT_PREFIX + k for k, t in others.items() if not map_keys({k: t})[1]]
        raise AdapterError(f"{source}: tensors of modules other than the head (modules_to_save?): {sorted(bad)}")
    required = SPAN_HEAD if task_type == "QUESTION_ANS" else classifier_names(family, task_type)
    missing = [peft_key(name, family) for name in required if name not in head]
    if missing:
        raise AdapterError(f"{source}: classifier tensors missing for a {family} base model: {missing} "
                           f"(found: {sorted(tensors)})")
    return tensors[PROMPT_KEY].float(), {k: t.float() for k, t in head.items()}


def load_peft_adapter(adapter_dir: str | Path, model_dir: str | Path | None = None,
                      dtype: torch.dtype = torch.float32) -> tuple[PromptModel, AdapterConfig]:
    """A peft prompt adapter on its base model, as our classifier (eval mode). Returns (model, adapter config)."""
    adapter_dir = Path(adapter_dir)
    config_path = adapter_dir / ADAPTER_CONFIG
    config, tensors = read_peft_adapter(adapter_dir)
    method = method_from_peft(config, config_path)
    base = model_dir or config.get("base_model_name_or_path")
    if not base:
        raise AdapterError(f"{config_path}: field 'base_model_name_or_path' is empty; pass the base model folder")
    model_dir = resolve_model_dir(str(base))
    encoder_config = EncoderConfig.from_json(model_dir)
    check_fits(config, encoder_config, config_path)
    weights_path = adapter_dir / (ADAPTER_WEIGHTS if (adapter_dir / ADAPTER_WEIGHTS).is_file() else PEFT_WEIGHTS_BIN)
    answers, tokens = config["task_type"] == "QUESTION_ANS", config["task_type"] == "TOKEN_CLS"
    if answers and method.is_v1:  # peft prepends the prompts but trains on unshifted start/end labels (#1974)
        raise AdapterError(f"{config_path}: a peft {config['peft_type']} QUESTION_ANS adapter was trained on start/end "
                           "positions that peft does not shift past its virtual tokens (peft issue #1974), so its "
                           "answers would land that many tokens early; only PREFIX_TUNING QA adapters load")
    prompts, head = split_tensors(tensors, encoder_config.family, weights_path, config["task_type"])
    if not tokens:
        method.head = FAMILY_HEAD[encoder_config.family]  # split_tensors found its tensors
    family, task = tasks.family_for_peft(config["task_type"])  # the family whose head peft's task model has
    if answers:
        head = {k: t for k, t in head.items() if k in SPAN_HEAD}  # a span head has nothing else
        num_labels = 2  # start, end
    else:
        num_labels = head["out_proj.weight" if method.head == "roberta" and not tokens else "classifier.weight"].shape[0]
    model = load_model(model_dir, method, lambda c: family.head(c, method, num_labels), dtype=dtype)
    prompt_module = model.prefix_encoder if method.is_prefix else model.prompt_encoder
    own = {"embedding": prompt_module.embedding.weight, **{f"head.{k}": p for k, p in model.head.named_parameters()}}
    theirs = {"embedding": prompts, **{f"head.{k}": t for k, t in head.items()}}
    # load_classifier leaves the pooler trainable only when the base checkpoint had none.
    if not answers and method.head == "pooler" and "head.pooler.weight" not in theirs and model.head.pooler.weight.requires_grad:
        raise AdapterError(f"{model_dir}: the base model has no pooler and {weights_path} carries none; "
                           "transformers would start a random one, so no logits can be reproduced")
    for name, tensor in theirs.items():
        what = PROMPT_KEY if name == "embedding" else peft_key(name.removeprefix("head."), encoder_config.family)
        if name not in own:
            raise AdapterError(f"{weights_path}: tensor {what!r} does not belong to the head of a "
                               f"{encoder_config.family} model")
        if own[name].shape != tensor.shape:
            hint = f" (field num_virtual_tokens is {method.num_virtual_tokens})" if name == "embedding" else ""
            raise AdapterError(f"{weights_path}: tensor {what!r} has shape {tuple(tensor.shape)}, "
                               f"the base model needs {tuple(own[name].shape)}{hint}")
        with torch.no_grad():
            own[name].copy_(tensor)
    # A QA model's labels are its family's (start, end); a classifier's are in its base config.json.
    labels = list(family.label_names(task)) if answers else _label_names(model_dir, num_labels)
    adapter_config = AdapterConfig(method, num_labels, base_model_path=str(model_dir), base_model=str(base),
                                   task=task, label_names=labels, source="peft", peft_config=config,
                                   max_length=getattr(family, "MAX_LENGTH", None))
    return model.eval(), adapter_config


def load_peft_trained(adapter_dir, model_dir=None, device="cpu", dtype: torch.dtype = torch.float32,
                      tokenizer: bool = True):
    """As `adapters.load.load_trained`, for a peft folder: (model, tokenizer, adapter config)."""
    from ..text.tokenizer import Tokenizer

    model, meta = load_peft_adapter(adapter_dir, model_dir, dtype)
    text = Tokenizer.from_folder(meta.base_model_path, model.encoder.config, model.method.positions_used,
                                 max_length=meta.max_length) if tokenizer else None
    model.adapter_config = meta
    return model.to(device).eval(), text, meta


def _label_names(model_dir: Path, num_labels: int) -> list[str]:
    """The base config's id2label when it has one entry per label, else HF's LABEL_i."""
    id2label = json.loads((Path(model_dir) / "config.json").read_text()).get("id2label") or {}
    if len(id2label) == num_labels:
        return [id2label[str(i)] for i in range(num_labels)]
    return [f"LABEL_{i}" for i in range(num_labels)]


# --- writing ---------------------------------------------------------------------------------
def peft_refusal(method: MethodConfig, family: str, task_type: str = "SEQ_CLS") -> str | None:
    """Why peft cannot reproduce this method's logits, or None when it can. `task_type`: the task
    family's PEFT_TASK_TYPE."""
    if task_type is None:
        return "the MLM head read through a verbalizer (a cloze task): peft has no task model for it"
    if task_type not in EXPORT_TASK_TYPES:
        return f"a {HEAD_WORDS.get(task_type, task_type)} head: peft export covers sequence and token classification"
    if method.is_full:
        return "full fine-tuning changes the whole model; it is not a peft adapter"
    if method.is_v1 and method.template:
        return "v1 with a template: peft puts every prompt in front of the text"
    if method.is_v1 and method.head_token != "first" and task_type == "SEQ_CLS":
        return ("v1 with head_token 'cls': peft's head reads position 0, the first virtual token "
                "(train with --head-token first)")
    if method.is_prefix and not method.prefix_position_shift:
        return ("prefix without prefix_position_shift: transformers + peft number the text's positions after "
                "the prefix (train with --prefix-position-shift)")
    head = method.head if method.head != "auto" else FAMILY_HEAD[family]
    if task_type == "SEQ_CLS" and head != FAMILY_HEAD[family]:
        return (f"head {head!r} on a {family} model: the transformers task model of that family has the "
                f"{FAMILY_HEAD[family]!r} head")
    return None


def prompt_embeddings(module: PromptEncoder | PrefixEncoder) -> torch.Tensor:
    """What peft saves: the v1 prompt encoder's outputs (n, h), or the flat prefix (n, 2·layers·h)."""
    with torch.no_grad():
        if isinstance(module, PromptEncoder):
            was_training = module.training
            output = module.eval()()
            module.train(was_training)
            return output.detach().float().cpu()
        x = module.embedding.weight
        if module.transform is not None:
            x = module.transform(x)
        return x.detach().float().cpu()  # prefix dropout: training only, nothing to export


def peft_config(method: MethodConfig, encoder: EncoderConfig, base_model: str | None, pooler: bool,
                task_type: str = "SEQ_CLS") -> dict:
    """adapter_config.json for peft, in inference mode (fields as peft 0.21 writes them)."""
    common = {"task_type": task_type, "num_virtual_tokens": method.num_virtual_tokens,
              "token_dim": encoder.hidden_size, "num_layers": encoder.num_hidden_layers,
              "num_attention_heads": encoder.num_attention_heads, "num_transformer_submodules": 1,
              "inference_mode": True, "base_model_name_or_path": base_model, "revision": None,
              "modules_to_save": ["pooler"] if pooler else None}  # peft adds "classifier", "score" itself
    if method.is_prefix:
        return {"peft_type": "PREFIX_TUNING", **common, "prefix_projection": False,
                "encoder_hidden_size": method.prefix_hidden_size}
    if method.method == "prompt":
        return {"peft_type": "PROMPT_TUNING", **common, "prompt_tuning_init": "RANDOM",
                "prompt_tuning_init_text": None, "tokenizer_name_or_path": None, "tokenizer_kwargs": None}
    return {"peft_type": "P_TUNING", **common, "encoder_reparameterization_type": "LSTM" if method.reparam == "lstm"
            else "MLP", "encoder_hidden_size": method.encoder_hidden_size,
            "encoder_num_layers": method.lstm_layers, "encoder_dropout": 0.0}


def _from_folder(adapter_dir: Path, model_dir):
    """Our adapter folder -> (method, base config, prompt module, trained head tensors, base path).

    Only the base's config.json is read: the prompt module is rebuilt alone, not the encoder."""
    config, tensors = read_adapter(adapter_dir)
    config_path = adapter_dir / ADAPTER_CONFIG
    method = config.method
    base = model_dir or config.base_model_path or config.base_model
    if not base:
        raise AdapterError(f"{config_path}: field 'base_model_path' is missing; pass the base model folder")
    base_dir = resolve_model_dir(str(base))
    encoder = EncoderConfig.from_json(base_dir)
    task_type = tasks.family_of_adapter(config).PEFT_TASK_TYPE
    refusal = peft_refusal(method, encoder.family, task_type)
    if refusal:
        raise AdapterError(f"{adapter_dir}: peft cannot represent this adapter: {refusal}")
    name = "prefix_encoder" if method.is_prefix else "prompt_encoder"
    module = prompt_module(encoder, method)
    own = {k.removeprefix(name + "."): t for k, t in tensors.items() if k.startswith(name + ".")}
    try:
        module.load_state_dict(own)
    except RuntimeError as err:
        raise AdapterError(f"{adapter_dir / ADAPTER_WEIGHTS}: {name} does not fit its method: {err}") from None
    head = {k.removeprefix("head."): t for k, t in tensors.items() if k.startswith("head.")}
    return method, encoder, module, head, str(Path(base_dir).resolve()), task_type


def export_peft(source: str | Path | PromptModel, out_dir: str | Path,
                model_dir: str | Path | None = None, overwrite: bool = False) -> Path:
    """Write a peft adapter folder that `PeftModel.from_pretrained(hf_task_model, out_dir)` loads
    with our logits. `source`: an adapter folder of train.py, or a classifier in memory.

    `model_dir`: the base model; for a folder it overrides the adapter config's, for a classifier it is
    only written as base_model_name_or_path. The classifier is always written; a pooler only if it
    trained (a frozen one is the base model's own, which peft uses too). An existing `out_dir` is
    replaced only with `overwrite=True`, and only when it holds a peft adapter and nothing else.
    """
    out_dir = Path(out_dir)
    check_export_target(out_dir, overwrite)
    if isinstance(source, PromptModel):
        method, encoder = source.method, source.encoder.config
        task_type = "TOKEN_CLS" if isinstance(source.head, TokenHead) else \
            "SEQ_CLS" if source.head.reads == "cls" else "QUESTION_ANS"  # the HF task model with this head
        refusal = peft_refusal(method, encoder.family, task_type)
        if refusal:
            raise AdapterError(f"peft cannot represent this model: {refusal}")
        module = source.prefix_encoder if method.is_prefix else source.prompt_encoder
        head = {k: p.detach() for k, p in source.head.named_parameters()
                if p.requires_grad or not k.startswith("pooler.")}
        base = str(model_dir) if model_dir else None
    else:
        source = Path(source)
        if is_peft_adapter(source):
            raise AdapterError(f"{source}: already a peft adapter folder (its adapter_config.json has peft_type); "
                               "export-peft converts an output folder of train.py")
        if out_dir.resolve() == source.resolve():
            raise AdapterError(f"{out_dir}: the export would overwrite its own source adapter; choose another folder")
        method, encoder, module, head, base, task_type = _from_folder(source, model_dir)

    missing = [f"head.{name}" for name in classifier_names(encoder.family, task_type) if name not in head]
    if missing:
        raise AdapterError(f"{source}: classifier tensors missing: {missing}")
    pooler = "pooler.weight" in head
    tensors = {PROMPT_KEY: prompt_embeddings(module)}
    for name, tensor in head.items():
        tensors[peft_key(name, encoder.family)] = tensor.float().cpu().contiguous()
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / ADAPTER_WEIGHTS, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    write_json(out_dir / ADAPTER_CONFIG, peft_config(method, encoder, base, pooler, task_type))
    return out_dir
