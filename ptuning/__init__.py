"""P-tuning v1 and v2 on a hand-written BERT/RoBERTa encoder.

text (text/tables.py, tasks/) → ids (text/tokenizer.py) → batches (text/batches.py) → encoder
(+ prompts / prefixes) → head → loss, metrics (tasks/) → training (training/) → adapter folder
(adapters/). See README.md for the map of modules.

The names below are the public API (README "Use it from Python"). Importing them loads torch,
numpy, tokenizers and safetensors only: plotting and TensorBoard (training/report.py) are imported
where they are used.
"""
from .adapters.bank import AdapterBank, load_bank
from .adapters.files import AdapterConfig, RunFolder, read_adapter, save_adapter
from .adapters.load import load_trained
from .config import EncoderConfig
from .inference import predict, predict_logits
from .model import (MethodConfig, PromptModel, build_classifier, build_model, load_classifier, load_model,
                    mark_trainable, parameter_report)
from .tasks import family_for
from .text.tokenizer import Tokenizer
from .training.loop import Scoring, TrainConfig, fit
from .weights import load_encoder

__all__ = ["AdapterBank", "AdapterConfig", "EncoderConfig", "MethodConfig", "PromptModel", "RunFolder", "Scoring",
           "TrainConfig", "Tokenizer",
           "build_classifier", "build_model", "family_for", "fit", "load_bank", "load_classifier", "load_encoder",
           "load_model", "load_trained", "mark_trainable", "parameter_report", "predict", "predict_logits",
           "read_adapter", "save_adapter"]
