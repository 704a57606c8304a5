"""One trainer for both stages of the paper: SRResNet pre-training and SRGAN training (k = 1 alternation).

``train(config, validate=None, resume=None)`` runs a whole job. ``validate(generator) -> {"psnr": ..., ...}`` is given
by the caller (the CLI builds one on Set5 with sr_models.metrics); the trainer calls it on rank 0 with the raw
generator in eval mode. In the MSE stage (``adversarial_weight == 0``) it keeps ``best.pt``, the checkpoint with the
best ``psnr`` (or the first metric returned). In the GAN stage it keeps none: the highest-PSNR checkpoint of an SRGAN
run is its least adversarial one, so the model of a GAN run is its final checkpoint (the paper's).
A ``validate`` with a ``sample`` attribute (``(lr, hr)``: one fixed validation crop, NCHW, LR in [0, 1], HR in
[-1, 1]; the CLI's has one) gives TensorBoard the same image at every validation, shown as bicubic | SR | HR.
Checkpoints are sr_models.checkpoint files (method = config.method); the full training state rides in ``extra``.
"""

import json
import logging
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sr_models.archs import Discriminator, SRResNet
from sr_models.archs.vgg import vgg_weights_source
from sr_models.checkpoint import build_generator, load_checkpoint, save_checkpoint
from sr_models.errors import CheckpointError, SRMOSError, WeightsError
from sr_models.fileio import atomic_write
from sr_models.losses import content_loss, discriminator_loss, generator_adversarial_loss
from sr_models.train import distributed
from sr_models.train.config import TrainConfig, apply_overrides
from sr_models.train.data import BatchStream, SRTrainDataset, repeats_for

log = logging.getLogger(__name__)
CHECKPOINT_DIR = "checkpoints"
STATE_KEY = "training_state"


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state():
    """Global RNG states in a form torch.load(weights_only=True) accepts (tensors, lists, numbers)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def zero_init_residual(generator):
    """Zero the scale of the last BN in every residual branch (and of the body's closing BN).

    The network then starts as head -> upsampling -> tail, a plain sub-pixel CNN, and the residual blocks grow in from
    zero (Goyal et al. 2017; torchvision's ``zero_init_residual``). Same architecture, faster start.
    """
    for branch in [*(block.body for block in generator.body), generator.body_tail]:
        last_bn = [m for m in branch if isinstance(m, torch.nn.BatchNorm2d)][-1]
        torch.nn.init.zeros_(last_bn.weight)


class Trainer:
    def __init__(self, config: TrainConfig, *, validate=None, context=None):
        self.config = config.check()
        self.validate = validate
        self.ctx = context or distributed.setup(config.device)
        self.device = self.ctx.device
        seed_everything(config.seed)
        # The loss network first: missing VGG weights must stop the run before anything else happens.
        self.content_loss = self._build_content_loss().to(self.device)
        # Hashed once: the provenance of every checkpoint says whose features trained it (stand-ins are marked).
        self.vgg_source = vgg_weights_source(
            config.content_loss, config.vgg_weights, config.vgg_random_weights_for_testing
        )
        self.generator = SRResNet(num_features=config.num_features, num_blocks=config.num_blocks, scale=config.scale)
        if config.init not in (None, "scratch"):
            self._load_init(config.init)
        elif config.zero_init_residual:
            zero_init_residual(self.generator)
        self.discriminator = (
            Discriminator(num_features=config.disc_features, input_size=config.crop_size, head=config.disc_head)
            if config.gan
            else None
        )
        self.g_model, self.opt_g, self.sched_g, self.scaler_g = self._prepare(self.generator)
        if config.gan:
            self.d_model, self.opt_d, self.sched_d, self.scaler_d = self._prepare(self.discriminator)
        self.stream = self._build_stream()
        self.step, self.best = 0, None
        self.output_dir = Path(config.output_dir)
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.amp)

    # ---- construction -------------------------------------------------------------------------------------------
    def _build_content_loss(self):
        c = self.config
        try:
            return content_loss(
                c.content_loss,
                rescale=c.vgg_rescale,
                vgg_weights=c.vgg_weights,
                vgg_random_weights=c.vgg_random_weights_for_testing,
            )
        except WeightsError as exc:
            raise WeightsError(
                f"{exc}. The {c.content_loss} content loss needs VGG19 ImageNet weights: put "
                "torchvision's file in the torch hub cache or pass --vgg-weights FILE"
            ) from None

    def _load_init(self, path):
        ckpt = load_checkpoint(path)
        if ckpt.get("arch") != "srresnet":
            raise CheckpointError(f"--init {path} holds a {ckpt.get('arch')!r} network, not an SRResNet generator")
        wanted = self.generator.arch_args
        found = {k: ckpt.get("arch_args", {}).get(k) for k in wanted}
        if found != wanted:
            raise CheckpointError(
                f"--init {path} was trained with {found}, this run builds {wanted}: set "
                "--num-features/--num-blocks/--scale to match the checkpoint"
            )
        self.generator = build_generator(ckpt)

    def _prepare(self, model):
        """Device, memory format, optimiser, scheduler, scaler, then DDP and compile for the training forward."""
        c = self.config
        model = model.to(self.device)
        if c.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(c.lr_milestones), gamma=c.lr_gamma)
        scaler = torch.amp.GradScaler(self.device.type, enabled=c.amp == "fp16")
        wrapped = distributed.wrap(model, self.ctx)
        if c.compile:
            wrapped = torch.compile(wrapped)
        return wrapped, optimizer, scheduler, scaler

    def _build_stream(self):
        c, ctx = self.config, self.ctx
        if c.batch_size % ctx.world_size:
            raise SRMOSError(f"batch size {c.batch_size} does not split evenly over {ctx.world_size} processes")
        dataset = SRTrainDataset(
            c.data, crop_size=c.crop_size, scale=c.scale, augment=c.augment, lr_folder=c.lr_data, cache=c.cache_images
        )
        dataset.repeat = repeats_for(len(dataset.files), c.batch_size)
        return BatchStream(
            dataset,
            c.batch_size // ctx.world_size,
            seed=c.seed,
            num_workers=c.num_workers,
            rank=ctx.rank,
            world_size=ctx.world_size,
            pin_memory=self.device.type == "cuda",
        )

    # ---- state ----------------------------------------------------------------------------------------------------
    def state_dict(self):
        state = {
            "step": self.step,
            "best": self.best,
            "config": self.config.to_dict(),
            "optimizer_g": self.opt_g.state_dict(),
            "scheduler_g": self.sched_g.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "data": self.stream.state_dict(),
            "rng": rng_state(),
        }
        if self.config.gan:
            state.update(
                discriminator=self.discriminator.state_dict(),
                optimizer_d=self.opt_d.state_dict(),
                scheduler_d=self.sched_d.state_dict(),
                scaler_d=self.scaler_d.state_dict(),
            )
        return state

    def load_state_dict(self, state, generator_state):
        self.generator.load_state_dict(generator_state)
        self.opt_g.load_state_dict(state["optimizer_g"])
        self.sched_g.load_state_dict(state["scheduler_g"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        if self.config.gan:
            self.discriminator.load_state_dict(state["discriminator"])
            self.opt_d.load_state_dict(state["optimizer_d"])
            self.sched_d.load_state_dict(state["scheduler_d"])
            self.scaler_d.load_state_dict(state["scaler_d"])
        self.stream.load_state_dict(state["data"])
        self.step, self.best = state["step"], state["best"]
        set_rng_state(state["rng"])

    # ---- one update ------------------------------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)

    def _apply(self, loss, optimizer, scheduler, scaler):
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()

    def train_step(self, lr, hr):
        """One update of the generator (and, in the SRGAN stage, one of the discriminator before it)."""
        with self._autocast():
            sr = self.g_model(lr)
        losses = {}
        if self.config.gan:
            with self._autocast():
                real_logits, fake_logits = self.d_model(hr), self.d_model(sr.detach())
            d_loss = discriminator_loss(real_logits.float(), fake_logits.float())
            self._apply(d_loss, self.opt_d, self.sched_d, self.scaler_d)
            losses["d_loss"] = d_loss.detach()
            losses["d_real"] = torch.sigmoid(real_logits.detach().float()).mean()
            losses["d_fake"] = torch.sigmoid(fake_logits.detach().float()).mean()
        with self._autocast():
            content = self.content_loss(sr.float(), hr)
            g_loss = content
            if self.config.gan:
                adversarial = generator_adversarial_loss(self.d_model(sr).float())
                g_loss = content + self.config.adversarial_weight * adversarial
                losses["adversarial"] = adversarial.detach()
        self._apply(g_loss, self.opt_g, self.sched_g, self.scaler_g)
        losses["content"] = content.detach()
        losses["g_loss"] = g_loss.detach()
        return losses

    def _to_device(self, batch):
        memory_format = torch.channels_last if self.config.channels_last else torch.contiguous_format
        return [t.to(self.device, non_blocking=True, memory_format=memory_format) for t in batch]

    # ---- the loop ---------------------------------------------------------------------------------------------------
    def run(self):
        """Train until config.steps; returns {"step", "checkpoint", "best", "metrics"}."""
        c, ctx = self.config, self.ctx
        writer = self._open_run_dir() if ctx.is_main else None
        from tqdm import tqdm

        bar = tqdm(
            total=c.steps, initial=self.step, disable=not (c.progress and ctx.is_main), unit="it", dynamic_ncols=True
        )
        self.generator.train()
        metrics, checkpoint, sums, window_start, window_steps = {}, None, {}, time.perf_counter(), 0
        while self.step < c.steps:
            lr, hr = self._to_device(next(self.stream))
            losses = self.train_step(lr, hr)
            self.step += 1
            window_steps += 1
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value
            bar.update(1)
            last = self.step == c.steps
            if self.step % c.log_every == 0 or last:
                elapsed = time.perf_counter() - window_start
                means = distributed.mean_across({k: float(v) / window_steps for k, v in sums.items()}, ctx)
                self._log_progress(writer, bar, means, window_steps / elapsed)
                sums, window_start, window_steps = {}, time.perf_counter(), 0
            if self.step % c.val_every == 0 or self.step % c.checkpoint_every == 0 or last:
                self._sync_buffers()
            validated = self.step % c.val_every == 0 or last
            if validated:
                metrics = self._validate(writer, lr, hr)
                self._keep_if_best(metrics)
            if self.step % c.checkpoint_every == 0 or last:
                checkpoint = self._save_checkpoint(metrics if validated else {})
        bar.close()
        if writer is not None:
            writer.close()
        distributed.barrier(ctx)
        return {"step": self.step, "checkpoint": checkpoint, "best": self.best, "metrics": metrics}

    def _sync_buffers(self):
        distributed.average_buffers(self.generator, self.ctx)
        if self.config.gan:
            distributed.average_buffers(self.discriminator, self.ctx)

    def _open_run_dir(self):
        checkpoints = self.output_dir / CHECKPOINT_DIR
        existing = [int(p.stem[len("step_") :]) for p in checkpoints.glob("step_*.pt") if p.stem[5:].isdigit()]
        if self.step == 0 and existing:
            raise SRMOSError(
                f"{checkpoints} already holds checkpoints from another run: continue it with "
                "--resume CHECKPOINT or choose a fresh --output-dir"
            )
        if existing and max(existing) > self.step:
            # Pruning would delete the new checkpoints in favour of the later ones of the earlier run.
            raise SRMOSError(
                f"{checkpoints} holds checkpoints past step {self.step}: resume into another "
                "--output-dir so that nothing stored there is lost"
            )
        checkpoints.mkdir(parents=True, exist_ok=True)
        atomic_write(self.output_dir / "config.json", json.dumps(self.config.to_dict(), indent=2))
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(
            log_dir=str(self.output_dir / "tensorboard"), purge_step=self.step + 1 if self.step else None
        )

    def _log_progress(self, writer, bar, means, steps_per_second):
        samples_per_second = steps_per_second * self.config.batch_size
        bar.set_postfix({**{k: f"{v:.4g}" for k, v in means.items()}, "samples/s": f"{samples_per_second:.1f}"})
        if writer is None:
            return
        self._log_line("train", {**means, "it_per_s": steps_per_second})
        for key, value in means.items():
            writer.add_scalar(f"train/{key}", value, self.step)
        writer.add_scalar("train/lr", self.opt_g.param_groups[0]["lr"], self.step)
        writer.add_scalar("speed/iterations_per_second", steps_per_second, self.step)
        writer.add_scalar("speed/samples_per_second", samples_per_second, self.step)

    def _log_line(self, kind, values):
        """One line on stderr and one row of ``log.csv`` (step, kind, wall time, name=value pairs), so a run can be
        watched without TensorBoard and read back with any CSV reader."""
        pairs = " ".join(f"{k}={float(v):.6g}" for k, v in values.items())
        print(f"step {self.step} {kind} {pairs}", file=sys.stderr, flush=True)
        with open(self.output_dir / "log.csv", "a", encoding="utf-8") as log_file:
            log_file.write(f"{self.step},{kind},{time.time():.3f},{pairs}\n")

    def _sample_row(self, lr, hr):
        """The TensorBoard sample, bicubic | SR | HR in [0, 1]: the validator's fixed validation crop where it has
        one (the same image every time), else the first crop of the current training batch."""
        from sr_models.resize import imresize_torch

        sample = getattr(self.validate, "sample", None)
        if sample is not None:
            lr, hr = (t.to(self.device) for t in sample)
        lr, hr = lr[:1].float(), hr[:1].float()
        sr = self.generator(lr).clamp(-1, 1)
        bicubic = imresize_torch(lr, self.config.scale).clamp(0, 1)
        return torch.cat([bicubic, (sr + 1) / 2, (hr + 1) / 2], dim=3)

    @torch.no_grad()
    def _validate(self, writer, lr, hr):
        """Run the caller's validate on rank 0; log metrics and a sample (bicubic | SR | HR)."""
        metrics = {}
        if self.ctx.is_main:
            self.generator.eval()
            if self.validate is not None:
                metrics = {k: float(v) for k, v in self.validate(self.generator).items()}
            if writer is not None:
                self._log_line("val", metrics)
                for key, value in metrics.items():
                    writer.add_scalar(f"val/{key}", value, self.step)
                writer.add_images("samples/bicubic_sr_hr", self._sample_row(lr, hr).cpu(), self.step)
            self.generator.train()
        distributed.barrier(self.ctx)
        return metrics

    def _keep_if_best(self, metrics):
        """On rank 0 of an MSE-stage run, write best.pt when the validation metric (psnr, else the first one) beats
        the best so far. A GAN-stage run keeps no best.pt: its model is the final checkpoint."""
        key = "psnr" if "psnr" in metrics else next(iter(metrics), None)
        if not self.ctx.is_main or key is None or self.config.gan:
            return
        if self.best is None or metrics[key] > self.best["value"]:
            self.best = {"metric": key, "value": metrics[key], "step": self.step}
            self._write(self.output_dir / CHECKPOINT_DIR / "best.pt", metrics)

    def _save_checkpoint(self, metrics):
        """Rank 0 writes step_<N>.pt and deletes all but the last keep_last of them."""
        if self.ctx.is_main:
            folder = self.output_dir / CHECKPOINT_DIR
            path = folder / f"step_{self.step:08d}.pt"
            self._write(path, metrics)
            for old in sorted(folder.glob("step_*.pt"))[: -self.config.keep_last]:
                old.unlink()
        distributed.barrier(self.ctx)
        return path if self.ctx.is_main else None

    def _write(self, path, metrics):
        c = self.config
        provenance = {
            "trainer": "sr_models.train",
            "preset": c.method,
            "content_loss": c.content_loss,
            "adversarial_weight": c.adversarial_weight,
            "data": [str(d) for d in c.data],
            "init": c.init,
            "seed": c.seed,
            "metrics": metrics,
            "vgg_weights": self.vgg_source,
        }
        save_checkpoint(
            path,
            self.generator,
            method=c.method,
            arch="srresnet",
            step=self.step,
            provenance=provenance,
            extra={STATE_KEY: self.state_dict()},
        )


def config_from_checkpoint(path, overrides=None):
    """The TrainConfig stored in a training checkpoint, with overrides (e.g. a longer --steps) applied."""
    ckpt = load_checkpoint(path)
    state = (ckpt.get("extra") or {}).get(STATE_KEY)
    if state is None:
        raise CheckpointError(
            f"{path} holds no training state (not written by sr_models.train): it can start a "
            "run with --init, not continue one with --resume"
        )
    return apply_overrides(TrainConfig(), {**state["config"], **(overrides or {})}, source=str(path))


def train(config, *, validate=None, resume=None, context=None):
    """Train per config (or continue the run saved in the checkpoint ``resume``); returns Trainer.run()'s dict."""
    context = context or distributed.setup(config.device)
    try:
        trainer = Trainer(config, validate=validate, context=context)
        if resume is not None:
            ckpt = load_checkpoint(resume)
            trainer.load_state_dict(ckpt["extra"][STATE_KEY], ckpt["state_dict"])
        return trainer.run()
    finally:
        distributed.teardown(context)
