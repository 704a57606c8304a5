"""DDP on the CPU: two gloo processes train a tiny SRGAN; both end with the same weights, only rank 0 writes."""

import dataclasses
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from tests.training.helpers import tiny_gan_config


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_rank(rank, world_size, port, config, results):
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    from sr_models.train import distributed
    from sr_models.train.trainer import Trainer

    # Each rank gets its own output folder, so the test can see that rank 1 wrote nothing.
    config = dataclasses.replace(config, output_dir=f"{config.output_dir}/rank{rank}")
    context = distributed.setup("cpu")
    try:
        trainer = Trainer(config, context=context)
        trainer.run()
        torch.save(
            {
                "g": trainer.generator.state_dict(),
                "d": trainer.discriminator.state_dict(),
                "data": trainer.stream.state_dict(),
            },
            f"{results}/rank{rank}.pt",
        )
    finally:
        distributed.teardown(context)


@pytest.mark.slow
def test_two_gloo_processes_stay_in_step(images, tmp_path):
    config = tiny_gan_config(
        images,
        tmp_path / "out",
        steps=3,
        checkpoint_every=3,
        batch_size=4,
    )
    mp.spawn(run_rank, args=(2, free_port(), config, str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    for net in ("g", "d"):
        for key in rank0[net]:
            torch.testing.assert_close(rank0[net][key], rank1[net][key], rtol=0, atol=0, msg=f"{net}.{key}")
    # 6 images: 3 per rank, 1 batch of 2 per epoch (drop_last), so step 3 is the first batch of epoch 2.
    assert rank0["data"] == rank1["data"] == {"epoch": 2, "batches_done": 1}
    assert (tmp_path / "out" / "rank0" / "checkpoints" / "step_00000003.pt").is_file()
    assert not (tmp_path / "out" / "rank1").exists()
    # The weights moved from their initial values (a check that training happened at all).
    torch.manual_seed(config.seed)
    from sr_models.archs import SRResNet

    fresh = SRResNet(num_features=8, num_blocks=1).state_dict()
    assert not torch.equal(fresh["tail.weight"], rank0["g"]["tail.weight"])
