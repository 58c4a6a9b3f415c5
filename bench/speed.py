"""Training and evaluation speed: ptuning vs transformers + peft, side by side in one process.

Same data (MRPC train/dev), same model shape and weights, same batch size, same precision. peft
runs the loop HF Trainer runs (random batches, dynamic padding, AdamW over trainable params)
without Trainer's bookkeeping, which only flatters peft. Ours runs its real training step
(`ptuning.training.loop`: length-grouped batches, frozen weights without gradient buffers).

    python bench/speed.py --config cpu     # MiniLM (real weights), v1 + v2, fp32, fixed steps
    python bench/speed.py --config cuda    # roberta-large shape (random init), v1, v2, full, bf16, an epoch a side
    python bench/speed.py --task squad     # SQuAD windows of 384 (span head; peft task_type QUESTION_ANS)
    python bench/speed.py --task conll2003 # NER: MiniLM, token classification, batch 16 (bench/ner.py's budget)

Blocks of steps alternate between the two sides so that background load hits both alike.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from report import device_name, publish  # noqa: E402

from ptuning.config import EncoderConfig  # noqa: E402
from ptuning.fast import compile_layers  # noqa: E402
from ptuning.text.batches import batch_order, encode_examples, eval_batches, make_batch  # noqa: E402
from ptuning.tasks.glue import find_data_dir, read_glue  # noqa: E402
from ptuning.weights import resolve_model_dir  # noqa: E402
from ptuning.model import MethodConfig, load_classifier, load_model  # noqa: E402
from ptuning.text.tokenizer import Tokenizer  # noqa: E402
from ptuning.tasks.glue import loss  # noqa: E402
from ptuning.tasks import ner, qa  # noqa: E402
from ptuning.training.loop import autocast_for, make_optimizer  # noqa: E402
from ptuning.inference import to_device  # noqa: E402

METHODS = {  # ours, and the peft config that is the same work
    "ptuning": (dict(method="ptuning", num_virtual_tokens=20, encoder_hidden_size=128, head_token="first"),
                ("PromptEncoderConfig", dict(num_virtual_tokens=20, encoder_hidden_size=128))),
    "prefix": (dict(method="prefix", num_virtual_tokens=20, prefix_projection=True, prefix_hidden_size=512,
                    prefix_position_shift=True),
               ("PrefixTuningConfig", dict(num_virtual_tokens=20, prefix_projection=True, encoder_hidden_size=512))),
    "prefix-noproj": (dict(method="prefix", num_virtual_tokens=20, prefix_position_shift=True),
                      ("PrefixTuningConfig", dict(num_virtual_tokens=20))),
    "full": (dict(method="full"), None),
}
# NER (token classification, peft TOKEN_CLS): bench/ner.py's recipes, 16 virtual tokens.
NER_METHODS = {
    "ptuning": (dict(method="ptuning", num_virtual_tokens=16, encoder_hidden_size=128),
                ("PromptEncoderConfig", dict(num_virtual_tokens=16, encoder_hidden_size=128))),
    "prefix": (dict(method="prefix", num_virtual_tokens=16, prefix_position_shift=True),
               ("PrefixTuningConfig", dict(num_virtual_tokens=16))),
    "full": (dict(method="full"), None),
}
NER_LABELS = len(ner.CONLL2003_LABELS)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


SHAPES = {  # random RoBERTa shapes for --config cuda: the seeds' model, and a toy one for smoke runs
    "roberta-large": dict(vocab_size=50265, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                          intermediate_size=4096),
    "tiny": dict(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128),
}


def roberta_large_dir(tmp: Path, shape: str = "roberta-large") -> Path:
    """A roberta-large-shaped RobertaForSequenceClassification, random init, saved for both sides."""
    import transformers as tf

    config = tf.RobertaConfig(**SHAPES[shape], max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                              bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, num_labels=2)
    torch.manual_seed(0)
    tf.RobertaForSequenceClassification(config).save_pretrained(tmp, safe_serialization=True)
    return tmp


TASK = "mrpc"  # main() sets it: "mrpc" (sequence classification), "squad" (span head), "conll2003" (token head)


def peft_side(model_dir, method, device, dtype):
    import peft
    import transformers as tf

    methods = NER_METHODS if TASK == "conll2003" else METHODS
    if TASK == "squad":
        model, task_type = tf.AutoModelForQuestionAnswering.from_pretrained(model_dir), "QUESTION_ANS"
    elif TASK == "conll2003":
        model = tf.AutoModelForTokenClassification.from_pretrained(model_dir, num_labels=NER_LABELS)
        task_type = "TOKEN_CLS"
    else:
        model, task_type = tf.AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2), "SEQ_CLS"
    if methods[method][1] is not None:
        name, kwargs = methods[method][1]
        model = peft.get_peft_model(model, getattr(peft, name)(task_type=task_type, **kwargs))
    return model.to(device)


def ours_side(model_dir, method, device, dtype, compile=False):
    storage = dtype if dtype != torch.float32 and method != "full" else torch.float32
    config = MethodConfig(**(NER_METHODS if TASK == "conll2003" else METHODS)[method][0])
    if TASK == "squad":
        model = load_model(model_dir, config, lambda c: qa.head(c, config, 2), dtype=storage, seed=0).to(device)
    elif TASK == "conll2003":
        model = load_model(model_dir, config, lambda c: ner.head(c, config, NER_LABELS), dtype=storage,
                           seed=0).to(device)
    else:
        model = load_classifier(model_dir, config, 2, dtype=storage, seed=0).to(device)
    if compile:
        compile_layers(model.encoder)  # as train.py --compile
    return model


def flops_floor(tokens: int, model, train: bool) -> float:
    """2 FLOPs per weight per token forward; backward for activations only doubles it (frozen weights)."""
    weights = sum(p.numel() for n, p in model.named_parameters() if "embed" not in n and p.dim() == 2)
    return tokens * 2 * weights * (2 if train else 1)


H100_BF16 = 800e12  # FLOP/s the floor assumes (dense bf16 matmul on an H100)


class Side:
    def __init__(self, name, model, data, pad_id, batch_size, device, precision, grouped):
        self.name, self.model, self.data, self.pad_id = name, model, data, pad_id
        self.ours = name.startswith("ours")
        self.device, self.batch_size, self.grouped = device, batch_size, grouped
        self.autocast, _ = autocast_for(device, precision)
        self.optimizer = make_optimizer(model, 1e-4, 0.01)
        self.seconds = self.samples = self.tokens = 0.0
        self.epoch = 0
        self.order = []
        # CUDA memory: both sides live on the GPU at once, so a side's peak is its own persistent memory
        # (weights, optimizer state: `own`, set by measure()) plus the most its blocks allocated on top.
        self.own = self.peak = 0

    def next_batch(self):
        if not self.order:
            lengths = [len(e.ids) for e in self.data.encoded]
            if self.grouped:
                self.order = batch_order(lengths, self.batch_size, 0, self.epoch)
            else:  # HF Trainer: a random permutation, consecutive slices
                perm = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(self.epoch)).tolist()
                self.order = [perm[i:i + self.batch_size] for i in range(0, len(perm), self.batch_size)]
            self.epoch += 1
        return make_batch(self.data, self.order.pop(0), self.pad_id)

    def move(self, batch):
        if self.ours:
            return to_device(batch, self.device)  # as train.py: a batch without padding drops its mask
        return {k: v.to(self.device) for k, v in batch.items()}

    def step(self, batch):
        batch_loss = self.forward(self.move(batch))
        batch_loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def forward(self, batch):
        """The loss of one batch already on the device, under the side's autocast."""
        with self.autocast():
            if self.ours:
                logits = self.model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
                batch_loss = {"squad": qa.loss, "conll2003": ner.loss}.get(TASK, loss)(logits, batch)
            else:
                kwargs = {} if self.model.config.model_type == "roberta" else {"token_type_ids": batch["token_type_ids"]}
                if TASK == "squad":  # HF's own loss: mean of start and end cross-entropy
                    kwargs.update(start_positions=batch["labels"][:, 0], end_positions=batch["labels"][:, 1])
                    batch_loss = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                            **kwargs).loss
                elif TASK == "conll2003":  # peft's v1 returns the virtual tokens' rows too: the text is last
                    logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                        **kwargs).logits
                    batch_loss = ner.loss(logits[:, -batch["input_ids"].shape[1]:], batch)
                else:
                    logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                        **kwargs).logits
                    batch_loss = loss(logits, batch)
        return batch_loss

    def train_block(self, steps):
        self.model.train()
        batches = [self.next_batch() for _ in range(steps)]
        sync(self.device)
        if self.device.type == "cuda":
            start = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        for batch in batches:
            self.step(batch)
        sync(self.device)
        self.seconds += time.perf_counter() - t
        if self.device.type == "cuda":
            self.peak = max(self.peak, self.own + torch.cuda.max_memory_allocated() - start)
        self.samples += sum(len(b["labels"]) for b in batches)
        self.tokens += sum(int(b["attention_mask"].sum()) for b in batches)

    @torch.no_grad()
    def evaluate(self, dev):
        self.model.eval()
        sync(self.device)
        t = time.perf_counter()
        for _, batch in eval_batches(dev, 64, self.pad_id) if self.ours else random_eval(dev, 64, self.pad_id):
            batch = self.move(batch)
            with self.autocast():
                if self.ours:
                    self.model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
                else:
                    self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        sync(self.device)
        return len(dev) / (time.perf_counter() - t)


def random_eval(data, batch_size, pad_id):
    for start in range(0, len(data), batch_size):
        indices = list(range(start, min(start + batch_size, len(data))))
        yield indices, make_batch(data, indices, pad_id)


def measure(model_dir, method, device, precision, steps, block, data, dev, pad_id, batch_size, real_tokens,
            compile=False, ours_grouped=True, versus="peft"):
    """ours_grouped: our training batches as our recipe orders them (length-grouped, or random as for NER).
    versus "peft": transformers + peft beside ours, both in `precision`; "fp32": ours in fp32 beside ours in
    `precision` (the same work, to measure what mixed precision buys); the first side is keyed "peft"."""
    sides = []
    if versus == "fp32":
        builders = [("ours fp32", ours_side, "fp32"), ("ours", ours_side, precision)]
    else:
        builders = [("peft", peft_side, precision), ("ours", ours_side, precision)]
    if compile:
        builders.append(("ours compiled", lambda *a: ours_side(*a, compile=True), precision))
    for name, build, side_precision in builders:
        before = torch.cuda.memory_allocated() if device.type == "cuda" else 0
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(side_precision, torch.float32)
        side = Side(name, build(model_dir, method, device, dtype), data, pad_id, batch_size, device, side_precision,
                    grouped=name != "peft" and ours_grouped)
        side.train_block(8 if "compiled" in name else 2)  # warm-up (and compiling), not timed
        side.evaluate(dev)
        side.seconds = side.samples = side.tokens = 0.0
        if device.type == "cuda":  # weights and AdamW state (gradients are freed after each step)
            side.own, side.peak = torch.cuda.memory_allocated() - before, 0
        sides.append(side)
    done = 0
    while done < steps:  # alternate blocks
        n = min(block, steps - done)
        for side in sides:
            side.train_block(n)
        done += n
    results = {}
    for side in sides:
        peak = side.peak / 2**30 if device.type == "cuda" else None
        rate = side.samples / side.seconds
        epoch_s = len(data) / rate
        flops = flops_floor(real_tokens, side.model, True)
        results["peft" if side is sides[0] else side.name] = dict(train_samples_s=rate, epoch_s=epoch_s, eval_samples_s=side.evaluate(dev),
                                  peak_gib=peak, tflops=flops / epoch_s / 1e12, floor_x=epoch_s / (flops / H100_BF16))
    return results


def profile_step(model_dir, method, device, precision, data, pad_id, batch_size) -> str:
    """Where one training step of ours spends its time (torch.profiler, top operators) and which matrix
    products ran in which dtype (counted at dispatch: a bf16 run should show only bf16 products)."""
    from torch.profiler import ProfilerActivity, profile
    from torch.utils._python_dispatch import TorchDispatchMode

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    side = Side("ours", ours_side(model_dir, method, device, dtype), data, pad_id, batch_size, device, precision,
                grouped=True)
    side.train_block(2)  # warm-up
    matmuls = ("mm", "addmm", "bmm", "baddbmm", "_scaled_dot_product_flash_attention_for_cpu",
               "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
               "_scaled_dot_product_cudnn_attention")
    tally = {}

    class CountMatmuls(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if name in matmuls:
                dtypes = tuple(sorted({str(a.dtype).removeprefix("torch.") for a in args
                                       if isinstance(a, torch.Tensor) and a.is_floating_point()}))
                tally[(name, dtypes)] = tally.get((name, dtypes), 0) + 1
            return func(*args, **(kwargs or {}))

    batch = side.next_batch()
    with CountMatmuls():
        side.step(batch)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        side.step(side.next_batch())
        sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    lines = [f"## {method}, {precision}, {device_name()}: one training step of ours, batch {batch_size}",
             "matrix products (forward + backward) by operator and input dtypes:"]
    lines += [f"  {name} {'/'.join(dtypes)}: {count}" for (name, dtypes), count in sorted(tally.items())]
    lines.append(phase_times(side, device))
    lines.append(prof.key_averages().table(sort_by=key, row_limit=15))
    return "\n".join(lines)


def phase_times(side, device, steps: int = 10) -> str:
    """Milliseconds a step spends in each phase, the device synchronised after each, over `steps` steps,
    beside the same steps unsynchronised. On the 2026-12-04 H200 a one-step profile held 12 ms of GPU
    work and ~70 ms of host time, yet the measured steps took 60-160 ms, depending on the method:
    this says in which phase the rest goes."""
    phases = dict(batch=0.0, forward=0.0, backward=0.0, optimizer=0.0)

    def mark(marks):
        sync(device)
        marks.append(time.perf_counter())
    for _ in range(steps):
        marks = [time.perf_counter()]
        batch = side.move(side.next_batch())
        mark(marks)
        batch_loss = side.forward(batch)
        mark(marks)
        batch_loss.backward()
        mark(marks)
        side.optimizer.step()
        side.optimizer.zero_grad(set_to_none=True)
        mark(marks)
        for phase, start, end in zip(phases, marks, marks[1:]):
            phases[phase] += end - start
    batches = [side.next_batch() for _ in range(steps)]
    sync(device)
    t = time.perf_counter()
    for batch in batches:
        side.step(batch)
    sync(device)
    free_running = (time.perf_counter() - t) / steps * 1e3
    split = ", ".join(f"{phase} {seconds / steps * 1e3:.1f}" for phase, seconds in phases.items())
    return (f"ms a step over {steps} steps, synchronised after each phase: {split} (sum "
            f"{sum(phases.values()) / steps * 1e3:.1f}); the same steps unsynchronised: {free_running:.1f}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--task", choices=("mrpc", "squad", "conll2003"), default="mrpc",
                   help="mrpc, or squad: windows of --max-length (384) from $SQUAD_DIR's train.json, or "
                        "conll2003: NER on MiniLM (--data-dir: its folder)")
    p.add_argument("--max-length", type=int, default=384, help="squad window length (default: 384)")
    p.add_argument("--n", type=int, default=4000, help="conll2003: first N train sentences to draw batches from")
    p.add_argument("--methods", nargs="+")
    p.add_argument("--steps", type=int, help="timed training steps per side (cpu default 24; cuda: one epoch)")
    p.add_argument("--block", type=int, default=4, help="steps per alternating block")
    p.add_argument("--data-dir")
    p.add_argument("--tokenizer", default="minilm", help="folder with tokenizer.json (default: the MiniLM package)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                   help="both sides: autocast in this precision (ours stores the frozen backbone in it, as train.py; "
                        "peft keeps fp32 weights, as Trainer's bf16=True) (default: cpu fp32, cuda bf16)")
    p.add_argument("--versus", choices=("peft", "fp32"), default="peft",
                   help="the other side: transformers + peft in the same precision (default), or ours in fp32 "
                        "(what --precision bf16 buys on the same work)")
    p.add_argument("--compile", action="store_true", help="also time ours with torch.compile (train.py --compile)")
    p.add_argument("--shape", choices=tuple(SHAPES), default="roberta-large",
                   help="--config cuda: the random RoBERTa shape (tiny: a smoke run on any device)")
    p.add_argument("--device", help="--config cuda on another device (cpu: a smoke run of the GPU benchmark)")
    p.add_argument("--jsonl", help="also append each row's numbers as a JSON line to this file")
    p.add_argument("--profile", help="write a torch.profiler table of one training step of ours per method, and "
                                     "which matrix products ran in which dtype, to this file")
    p.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    args = p.parse_args()

    cuda = args.config == "cuda"
    device = torch.device(args.device or ("cuda" if cuda else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--config cuda needs a CUDA GPU (or --device cpu for a smoke run)")
    precision = args.precision or ("bf16" if cuda else "fp32")
    methods = args.methods or (["ptuning", "prefix", "full"] if cuda else ["ptuning", "prefix"])
    tmp = Path(tempfile.mkdtemp())
    model_dir = roberta_large_dir(tmp, args.shape) if cuda else resolve_model_dir("minilm")
    tok_dir = resolve_model_dir(args.tokenizer)  # roberta's tokenizer is not here: the cuda run uses BERT ids
    global TASK
    TASK = args.task
    if args.task == "conll2003":
        return main_ner(args)
    if args.task == "squad":  # the first 1,000 training / 200 dev questions are plenty for timing
        rows = {split: qa.read("squad", split, args.data_dir)[:n] for split, n in (("train", 1000), ("dev", 200))}
    else:
        glue = find_data_dir(args.data_dir)
        rows = {split: read_glue("mrpc", split, glue) for split in ("train", "dev")}

    lines = []
    for method in methods:
        reserved = 20 if method == "ptuning" else 0
        tok = Tokenizer.from_folder(tok_dir, EncoderConfig.from_json(tok_dir), reserved,
                                    max_length=args.max_length if args.task == "squad" else None)
        encode = (lambda t, e: qa.encode(t, e, doc_stride=min(128, args.max_length // 4))) if args.task == "squad" \
            else encode_examples
        data, dev = encode(tok, rows["train"]), encode(tok, rows["dev"])
        pad_id = EncoderConfig.from_json(model_dir).pad_token_id
        if cuda:  # token ids must exist in both vocabularies; shapes are what matter for speed
            for e in data.encoded + dev.encoded:
                e.ids = [i if i != 0 else 3 for i in e.ids]
                e.type_ids = [0] * len(e.ids)  # RoBERTa has one token type
        real_tokens = sum(len(e.ids) + reserved for e in data.encoded)
        steps = args.steps or (math.ceil(len(data) / 32) if cuda else 24)  # cuda: one whole epoch a side
        r = measure(model_dir, method, device, precision, steps, args.block, data, dev, pad_id, 32, real_tokens,
                    args.compile, versus=args.versus)
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                f.write(json.dumps({"task": args.task, "method": method, "precision": precision, "versus": args.versus,
                                    "device": device_name(), "shape": args.shape if cuda else "minilm",
                                    "date": str(datetime.date.today()), "steps": steps, **r}) + "\n")
        if args.profile:
            with open(args.profile, "a") as f:
                f.write(profile_step(model_dir, method, device, precision, data, pad_id, 32) + "\n")
        peft = r.pop("peft")
        for name, ours in r.items():
            mem = (f"{peft['peak_gib']:.2f} | {ours['peak_gib']:.2f} | {ours['peak_gib'] / peft['peak_gib']:.2f}"
                   if device.type == "cuda" else "– | – | –")
            label = method + (", compiled" if "compiled" in name else "")
            lines.append(f"| {label} | {peft['train_samples_s']:.1f} | "
                         f"{ours['train_samples_s']:.1f} | **{ours['train_samples_s'] / peft['train_samples_s']:.2f}×**"
                         f" | {peft['epoch_s']:.2f} | {ours['epoch_s']:.2f} | {peft['eval_samples_s']:.1f} | "
                         f"{ours['eval_samples_s']:.1f} | {ours['eval_samples_s'] / peft['eval_samples_s']:.2f}× | "
                         f"{mem} | {peft['tflops']:.3g} | {ours['tflops']:.3g} | "
                         f"{format(ours['floor_x'], '.1f') + '×' if device.type == 'cuda' else '–'} |")
            print(lines[-1], flush=True)
    import transformers, peft as peft_lib  # noqa: E401
    other = "peft" if args.versus == "peft" else "ours fp32"
    header = (f"| method | {other} train samples/s | ours | ratio | {other} s/epoch | ours | {other} eval samples/s | "
              f"ours | ratio | {other} peak GiB | ours | ratio | {other} TFLOP/s | ours | ours / floor |\n|" + "---|" * 15)
    text = (f"\n### Speed, {datetime.date.today()}, {device_name()}, {'roberta-large shape' if cuda else 'MiniLM'}, {precision}"
            f"{', SQuAD windows of ' + str(args.max_length) if args.task == 'squad' else ', MRPC'}, batch 32\n\ntorch {torch.__version__}, transformers {transformers.__version__}, peft "
            f"{peft_lib.__version__}. `python bench/speed.py {' '.join(sys.argv[1:])}`\n\n{header}\n" + "\n".join(lines) + "\n")
    publish(text, args.write)


def main_ner(args):
    """NER: MiniLM (real weights), ours vs peft TOKEN_CLS, batch 16, blocks alternating; GPU when there is one."""
    import transformers
    import peft as peft_lib

    cuda = torch.cuda.is_available() and args.config == "cuda"
    device, precision = torch.device("cuda" if cuda else "cpu"), args.precision or ("bf16" if cuda else "fp32")
    model_dir = resolve_model_dir("minilm")
    train = ner.read("conll2003", "train", args.data_dir)[:args.n]
    valid = ner.read("conll2003", "dev", args.data_dir)[:200]  # eval speed only
    lines = []
    for method in args.methods or ["prefix", "ptuning", "full"]:
        reserved = 16 if method == "ptuning" else 0
        tok = Tokenizer.from_folder(model_dir, EncoderConfig.from_json(model_dir), reserved)
        data, dev = ner.encode(tok, train, ner.CONLL2003_LABELS), ner.encode(tok, valid, ner.CONLL2003_LABELS)
        real_tokens = sum(len(e.ids) + reserved for e in data.encoded)
        steps = args.steps or 48
        grouped = ner.RECIPES[method].get("group_by_length", True)  # what train.py does for NER
        r = measure(model_dir, method, device, precision, steps, args.block, data, dev, tok.pad_id, 16, real_tokens,
                    ours_grouped=grouped, versus=args.versus)
        peft, ours = r["peft"], r["ours"]
        lines.append(f"| {method} | {peft['train_samples_s']:.1f} | {ours['train_samples_s']:.1f} | "
                     f"**{ours['train_samples_s'] / peft['train_samples_s']:.2f}×** | {peft['eval_samples_s']:.1f} | "
                     f"{ours['eval_samples_s']:.1f} | {ours['eval_samples_s'] / peft['eval_samples_s']:.2f}× |")
        print(lines[-1], flush=True)
    other = "peft" if args.versus == "peft" else "ours fp32"
    header = (f"| method | {other} train samples/s | ours | ratio | {other} eval samples/s | ours | ratio |\n|"
              + "---|" * 7)
    text = (f"\n### Speed, NER (CoNLL-2003), {datetime.date.today()}, {device_name()}, MiniLM, "
            f"{precision}, batch 16\n\ntorch {torch.__version__}, transformers "
            f"{transformers.__version__}, peft {peft_lib.__version__}; peft TOKEN_CLS (prefix 16 tokens, P_TUNING 16 "
            f"tokens MLP 128, full fine-tuning), {steps} timed steps a side in alternating blocks of {args.block}; "
            f"our batches as our NER recipe orders them ({'random' if not grouped else 'length-grouped'}). "
            f"`python bench/speed.py {' '.join(sys.argv[1:])}`\n\n{header}\n" + "\n".join(lines) + "\n")
    publish(text, args.write)


if __name__ == "__main__":
    main()
