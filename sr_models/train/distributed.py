"""torch.distributed plumbing for torchrun: one process per GPU (or CPU process with gloo), only rank 0 writes."""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from sr_models.errors import SRMOSError


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def enabled(self):
        return self.world_size > 1


def pick_device(name, local_rank=0):
    """``auto``: this process's GPU when there is one, else the CPU."""
    if name == "auto":
        name = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    elif name == "cuda":
        name = f"cuda:{local_rank}"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SRMOSError(f"device {name} asked for, but torch sees no CUDA GPU here; use --device cpu")
    return device


def setup(device_name="auto"):
    """Join the process group torchrun describes in the environment (WORLD_SIZE > 1), else run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world_size)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def teardown(context):
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context):
    if context.enabled:
        dist.barrier()


def wrap(model, context):
    """DistributedDataParallel around model when several processes train; BN becomes SyncBatchNorm on GPUs."""
    if not context.enabled:
        return model
    if context.device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=[context.device.index])
    return torch.nn.parallel.DistributedDataParallel(model)


def mean_across(values, context):
    """Average a dict of floats over the processes (for logging losses)."""
    if not context.enabled:
        return values
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor)
    return {k: v / context.world_size for k, v in zip(keys, tensor.tolist())}


def average_buffers(model, context):
    """Average floating-point buffers (BN running statistics) over the processes.

    Without SyncBatchNorm (the CPU/gloo case) each process tracks statistics of its own shard; averaging them before
    a checkpoint or validation makes every rank hold the same, better-estimated, model.
    """
    if not context.enabled:
        return
    with torch.no_grad():
        for buffer in model.buffers():
            if buffer.is_floating_point():
                dist.all_reduce(buffer)
                buffer.div_(context.world_size)
