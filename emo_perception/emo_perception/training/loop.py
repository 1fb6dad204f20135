"""The training loop every stage shares: seeds, distributed data parallel, progress, metrics CSV
(and TensorBoard when installed), checkpoints that resume exactly, evaluation, export.

Exact resume: the batch order of an epoch comes from DistributedSampler(seed, epoch), an item's
augmentation from a generator seeded by (seed, epoch, item), and the global RNG (dropout) is
re-seeded from (seed, step, rank) before each step; a checkpoint holds model, optimizer, config,
epoch, batch and step (and the RNG states). Resuming replays the same steps bit for bit on CPU.

Distributed: the global batch is split over the ranks; DistributedSampler gives rank r every
size-th sample, so the union of the ranks' batches is the single process's batch, and DDP's mean of
the gradients is the gradient of the global batch's mean loss. Augmentation and modality dropout
depend on the item, not the rank, so they are the same on any number of processes; only nn.Dropout
draws differ (per-rank RNG).
"""
from __future__ import annotations

import csv
import math
import pathlib
import random
import shutil
import time

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from ..paths import atomic_open
from . import distributed

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.csv"


class _Indices(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def _seed(*parts) -> int:
    h = 0
    for p in parts:
        h = (h * 1_000_003 + int(p)) % (2 ** 63 - 1)
    return h


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            "python": list(map(lambda x: list(x) if isinstance(x, tuple) else x, random.getstate()))}


def _set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], np.uint32), *n[2:]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


class MetricsLog:
    """Long-format CSV: step, epoch, split, name, value (one row per number), and TensorBoard if installed."""

    FIELDS = ("step", "epoch", "split", "name", "value")

    def __init__(self, out_dir: pathlib.Path, resume_step: int | None):
        self.path = out_dir / METRICS
        rows = []
        if resume_step is not None and self.path.is_file():
            with open(self.path, newline="") as f:   # rows written after the checkpoint are replayed: drop them
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, self.FIELDS)
            w.writeheader()
            w.writerows(rows)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.tb = None
            return
        # The CSV is the record: TensorBoard's events are rewritten from its kept rows, so that a killed
        # run's tail (and events it never flushed) cannot differ from an uninterrupted run
        tb_dir = out_dir / "tensorboard"
        shutil.rmtree(tb_dir, ignore_errors=True)
        self.tb = SummaryWriter(str(tb_dir))
        for r in rows:
            self.tb.add_scalar(f"{r['split']}/{r['name']}", float(r["value"]), int(r["step"]))

    def write(self, step: int, epoch: int, split: str, values: dict):
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f)
            for name, value in values.items():
                w.writerow([step, epoch, split, name, f"{value:.8g}"])
                if self.tb is not None:
                    self.tb.add_scalar(f"{split}/{name}", value, step)

    def close(self):
        if self.tb is not None:
            self.tb.close()


def read_metrics(out_dir) -> list[dict]:
    with open(pathlib.Path(out_dir) / METRICS, newline="") as f:
        return [{**r, "step": int(r["step"]), "epoch": int(r["epoch"]), "value": float(r["value"])}
                for r in csv.DictReader(f)]


def _save(path: pathlib.Path, payload: dict):
    with atomic_open(path) as f:   # a kill while writing leaves the previous checkpoint intact
        torch.save(payload, f)


def fit(task, run, world: distributed.World, resume: bool = False, progress: bool = True) -> dict:
    """Train `task` (a stage) with the RunConfig `run`; returns the final evaluation and counts."""
    out_dir = pathlib.Path(run.out_dir)
    model = task.model.to(world.device)
    opt = torch.optim.AdamW(model.parameters(), lr=run.lr, weight_decay=run.weight_decay)
    per_rank = run.batch_size // world.size
    sampler = DistributedSampler(_Indices(len(task.train_set)), num_replicas=world.size, rank=world.rank,
                                 shuffle=True, seed=run.seed, drop_last=True)
    steps_per_epoch = len(sampler) // per_rank
    if steps_per_epoch == 0:
        raise ValueError(f"{len(task.train_set)} training samples make no batch of {run.batch_size} "
                         f"({per_rank} per rank); lower batch_size or add data")
    total = steps_per_epoch * run.epochs
    if run.max_steps:
        total = min(total, run.max_steps)
    epoch = batch = step = 0
    ckpt_path = out_dir / CHECKPOINT
    if resume and ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location=world.device, weights_only=True)
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["optimizer"])
        epoch, batch, step = ck["epoch"], ck["batch"], ck["step"]
        _set_rng_state(ck["rng"])
    elif resume:
        raise FileNotFoundError(f"--resume: no checkpoint '{ckpt_path}'")
    ids = [world.device.index] if world.device.type == "cuda" else None
    net = DistributedDataParallel(model, device_ids=ids) if world.size > 1 else model
    log = MetricsLog(out_dir, step if resume else None) if world.main else None
    bar = None
    if progress and world.main:
        from tqdm import tqdm
        bar = tqdm(total=total, initial=step, desc=f"emo_train {task.name}", unit="step", dynamic_ncols=True)

    def checkpoint(epoch_, batch_):
        if world.main:
            _save(ckpt_path, {"kind": task.kind, "model_args": task.model_args(), "state_dict": model.state_dict(),
                              "optimizer": opt.state_dict(), "config": task.config_dict(), "step": step,
                              "epoch": epoch_, "batch": batch_, "rng": _rng_state()})
        world.barrier()

    started = time.monotonic()
    evaluated = (None, None)    # (step, metrics) of the latest evaluation in this process
    while step < total and epoch < run.epochs:
        sampler.set_epoch(epoch)
        order = list(sampler)
        net.train()
        while batch < steps_per_epoch and step < total:
            torch.manual_seed(_seed(run.seed, step, world.rank))
            idx = order[batch * per_rank:(batch + 1) * per_rank]
            data = task.train_set.batch(idx, [_seed(run.seed, epoch, i) for i in idx])
            data = {k: v.to(world.device) if torch.is_tensor(v) else v for k, v in data.items()}
            loss, parts = task.loss(net, data)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if run.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), run.grad_clip)
            opt.step()
            step += 1
            batch += 1
            values = {"loss": world.mean(loss.item()), **{k: world.mean(v) for k, v in parts.items()}}
            if not all(math.isfinite(v) for v in values.values()):
                raise FloatingPointError(f"training loss is not finite at step {step}: {values}; lower lr")
            if log is not None:
                log.write(step, epoch, "train", values)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{values['loss']:.4f}")
            if batch == steps_per_epoch:
                epoch, batch = epoch + 1, 0
                if world.main and (epoch % run.eval_every_epochs == 0 or step == total):
                    evaluated = (step, task.evaluate(model))
                    log.write(step, epoch, "val", evaluated[1])
                checkpoint(epoch, 0)
                break
            if run.checkpoint_every and step % run.checkpoint_every == 0:
                checkpoint(epoch, batch)
    if bar is not None:
        bar.close()
    # epochs of data seen, fractional: max_steps may stop before the first epoch ends (whole epochs would say 0)
    summary = {"steps": step, "epochs": round(step / steps_per_epoch, 3), "steps_per_epoch": steps_per_epoch,
               "seconds": round(time.monotonic() - started, 1)}
    if world.main:
        # the last epoch's evaluation is the final one (the weights have not changed since)
        summary["val"] = evaluated[1] if evaluated[0] == step else task.evaluate(model)
        if step % steps_per_epoch:   # stopped mid-epoch by max_steps: its evaluation was not logged yet
            log.write(step, epoch, "val", summary["val"])
        checkpoint(epoch, batch)
        log.close()
    else:
        world.barrier()
    return summary

