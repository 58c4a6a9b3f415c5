"""Data parallel training under torchrun, in a few plain functions.

Each process takes a slice of every global batch; after backward the gradients of the few
trainable tensors are summed across processes (what DDP does, minus its bucketing: a frozen
backbone leaves too little to overlap). Rank 0 alone writes files and prints.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) without torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_gradients(params) -> None:
    if world()[1] > 1:
        for p in params:
            if p.grad is None:  # a process whose slice of the batch was empty still takes part
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)


def gather_objects(obj) -> list:
    if world()[1] == 1:
        return [obj]
    parts = [None] * world()[1]
    dist.all_gather_object(parts, obj)
    return parts


def all_sum(value: torch.Tensor) -> torch.Tensor:
    if world()[1] > 1:
        value = value.clone()
        dist.all_reduce(value)
    return value


def init_distributed(device: torch.device) -> tuple[torch.device, int]:
    """Under torchrun (WORLD_SIZE > 1): join the process group; one GPU per process. Returns (device, rank)."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return device, 0
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device, dist.get_rank()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
