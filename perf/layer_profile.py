"""Per-layer-group profile of SRResNet inference (``python -m perf.inference --layers``).

Each group is a top-level part of the network (head, the residual body, the body's last conv, each upsampling
block, the tail), timed on the input it sees in a real forward pass, with its convolutions' FLOPs counted on the
paper network (2 * Cin * Cout * k * k * Hout * Wout), so a rewritten group (the tail as a sub-pixel conv, say) is
credited with the work the paper network does, not with the zeros or halo rows the rewrite adds. The rate of each
group is printed beside the best conv3x3 rate, timed in the same rounds, so the shares can be read on a shared
machine: the rounds alternate and the best of each is kept.
"""

from dataclasses import dataclass

import torch
from torch import nn

from perf.machine import best_time


@dataclass
class Group:
    name: str
    what: str  # the paper network's convolutions in this group, e.g. "2 x conv3x3 64->64 at 1x"
    paper_flops: int
    run: object  # callable: runs the fused network's module on its recorded input
    seconds: float = float("inf")


def group_names(model):
    """Top-level children of an SRResNet, with the upsampling blocks one by one (``upsample.0``, ...)."""
    names = []
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential) and name == "upsample":
            names += [f"{name}.{index}" for index in range(len(child))]
        else:
            names.append(name)
    return names


def conv_census(module, x, lr_width):
    """(FLOPs, description) of the convolutions ``module`` runs on ``x``, resolution relative to the LR input's."""
    flops, kinds = 0, {}

    def count(conv, inputs, output):
        nonlocal flops
        k = conv.kernel_size
        flops += 2 * conv.in_channels * conv.out_channels * k[0] * k[1] * output.shape[-2] * output.shape[-1]
        zoom = output.shape[-1] / lr_width
        kind = f"conv{k[0]}x{k[1]} {conv.in_channels}->{conv.out_channels} at {zoom:g}x"
        kinds[kind] = kinds.get(kind, 0) + 1

    hooks = [m.register_forward_hook(count) for m in module.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.inference_mode():
            module(x)
    finally:
        for hook in hooks:
            hook.remove()
    return flops, ", ".join(f"{n} x {kind}" if n > 1 else kind for kind, n in kinds.items())


def recorded_inputs(model, x, names):
    """The input each named submodule receives in one forward pass of ``model`` on ``x``."""
    inputs = {}
    hooks = [
        model.get_submodule(name).register_forward_pre_hook(lambda m, args, name=name: inputs.setdefault(name, args[0]))
        for name in names
    ]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return inputs


def build_groups(plain, fused, x):
    """One Group per part of the network: the paper FLOPs from ``plain``, the timed call from ``fused``."""
    names = group_names(plain)
    plain_inputs = recorded_inputs(plain, x, names)
    fused_inputs = recorded_inputs(fused, x.contiguous(memory_format=torch.channels_last), names)
    groups = []
    for name in names:
        flops, what = conv_census(plain.get_submodule(name), plain_inputs[name], x.shape[-1])
        module, given = fused.get_submodule(name), fused_inputs.get(name)
        if given is None or isinstance(module, nn.Identity):  # folded into the next group: timed with it
            groups.append(Group(name, what + " (computed in the next group)", flops, None))
            continue

        def run(module=module, given=given):
            with torch.inference_mode():
                module(given)

        groups.append(Group(name, what, flops, run))
    return groups


def merge_folded(groups):
    """Credit a group whose work the fused network does inside the next group to that next group."""
    merged, carry = [], None
    for group in groups:
        if carry is not None:
            group = Group(
                f"{carry.name} + {group.name}",
                f"{carry.what.split(' (')[0]}; {group.what}",
                carry.paper_flops + group.paper_flops,
                group.run,
            )
            carry = None
        if group.run is None:
            carry = group
        else:
            merged.append(group)
    return merged


def time_groups(groups, whole, device, rounds, peak_burst):
    """(best conv FLOP/s, best seconds of ``whole()``) over ``rounds``, with each group's best time set; each round
    times ``peak_burst()`` (returns FLOP/s), every group and the whole path back to back."""
    peak, whole_seconds = 0.0, float("inf")
    for group in groups:
        group.run()  # warm-up: primitive creation
    for _ in range(rounds):
        peak = max(peak, peak_burst())
        for group in groups:
            group.seconds = min(group.seconds, best_time(group.run, device, 2))
        whole_seconds = min(whole_seconds, best_time(whole, device, 1))
    return peak, whole_seconds


def print_profile(groups, peak, whole_seconds, label, images=1):
    """The table (per image, ``images`` per timed call): each group's time, share, paper GFLOP, GFLOP/s and % of
    the conv limit; then what the whole path spends outside the groups."""
    for group in groups:
        group.seconds /= images
    whole_seconds /= images
    """The table: each group's time, share, paper GFLOP, GFLOP/s and % of the conv limit; the rest of the path."""
    total = sum(group.seconds for group in groups)
    print(f"per-layer profile of {label} (best of the rounds; conv limit {peak / 1e9:.1f} GFLOP/s, same run):")
    print(
        f"  {'group':22s} {'ms':>8s} {'share':>6s} {'GFLOP':>7s} {'GFLOP/s':>8s} {'of limit':>8s}  paper convolutions"
    )
    for group in groups:
        rate = group.paper_flops / group.seconds
        print(
            f"  {group.name:22s} {group.seconds * 1e3:8.1f} {group.seconds / whole_seconds:6.1%} "
            f"{group.paper_flops / 1e9:7.2f} {rate / 1e9:8.1f} {rate / peak:8.1%}  {group.what}"
        )
    rest = whole_seconds - total
    print(
        f"  {'rest of the path':22s} {rest * 1e3:8.1f} {rest / whole_seconds:6.1%} "
        "(uint8 in/out, the long skip; the whole path is timed on its own, so this can be slightly negative)"
    )
    flops = sum(group.paper_flops for group in groups)
    print(
        f"  {'sum of the groups':22s} {total * 1e3:8.1f} {total / whole_seconds:6.1%} {flops / 1e9:7.2f} "
        f"{flops / total / 1e9:8.1f} {flops / total / peak:8.1%}"
    )
    print(
        f"  {'whole path':22s} {whole_seconds * 1e3:8.1f} {1:6.1%} {flops / 1e9:7.2f} "
        f"{flops / whole_seconds / 1e9:8.1f} {flops / whole_seconds / peak:8.1%}"
    )
