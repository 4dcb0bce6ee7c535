"""End to end, distributed training: biformer detectors are DDP-safe, proven with two gloo processes on CPU (marked
slow; the SyncBatchNorm conversion itself is tested in test_modules.py).

Ultralytics trains on several GPUs with torch DDP (``find_unused_parameters=True`` unless compiling). The test here is
stricter: ``find_unused_parameters=False``, under which any parameter that gets no gradient makes DDP raise at the
next step, and checks after each step that every parameter has a finite gradient and that the replicas' parameters
are bit-identical.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import detection_batch, wake_branches
from torch.nn.parallel import DistributedDataParallel

from ultralytics_biformer import BRA, C2PSA_BRA, C3k2_BRA

pytestmark = pytest.mark.slow

CONFIGS = ("yolo11n-biformer.yaml", "yolo26n-biformer.yaml")
STEPS = 3
WORLD = 2


def _worker(rank: int, init_file: str, out_dir: str, cfg: str) -> None:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        from ultralytics.cfg import get_cfg
        from ultralytics.nn.tasks import DetectionModel

        import ultralytics_biformer  # noqa: F401  (explicit, whatever the autoload setting of the CI)

        torch.manual_seed(rank)  # different initial weights per rank on purpose: DDP must broadcast rank 0's
        model = DetectionModel(cfg, nc=2, verbose=False)
        model.args = get_cfg()
        wake_branches(model)
        model.train()
        ddp = DistributedDataParallel(model, find_unused_parameters=False)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
        report = {"missing": [], "nonfinite": [], "losses": [], "grad_checksums": []}
        for step in range(STEPS):
            optimizer.zero_grad(set_to_none=True)
            loss, _ = ddp(detection_batch(1000 * rank + step))  # other data on every rank, or averaging is untested
            loss.sum().backward()
            named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
            report["missing"] += [f"step {step}: {n}" for n, p in named if p.grad is None]
            report["nonfinite"] += [
                f"step {step}: {n}" for n, p in named if p.grad is not None and not p.grad.isfinite().all()
            ]
            report["losses"].append(loss.sum().item())
            report["grad_checksums"].append(sum(p.grad.double().sum().item() for _, p in named if p.grad is not None))
            optimizer.step()
        report["params"] = torch.cat([p.detach().flatten() for p in model.parameters()])
        report["ours"] = sorted(
            {n.split(".")[1] for n, m in model.named_modules() if isinstance(m, (BRA, C2PSA_BRA, C3k2_BRA))}
        )
        report["n_params"] = sum(1 for p in model.parameters() if p.requires_grad)
        torch.save(report, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("cfg", CONFIGS)
def test_ddp_two_gloo_processes(tmp_path, cfg):
    """Every parameter of a biformer detector gets a gradient on every step under DDP, and the replicas stay equal."""
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path), cfg), nprocs=WORLD, join=True)
    reports = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    for rank, report in enumerate(reports):
        assert report["ours"], "the model has no biformer blocks"
        assert not report["missing"], f"rank {rank}: parameters without gradient: {report['missing'][:10]}"
        assert not report["nonfinite"], f"rank {rank}: non-finite gradients: {report['nonfinite'][:10]}"
        assert all(torch.isfinite(torch.tensor(report["losses"])))
    a, b = reports
    assert a["losses"] != b["losses"], "both ranks saw the same data: the test would not show gradient averaging"
    assert a["grad_checksums"] == b["grad_checksums"], "all-reduced gradients differ between ranks"
    assert torch.equal(a["params"], b["params"]), "replicas diverged"


def _sync_bn_worker(rank: int, init_file: str) -> None:
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    dist.init_process_group("nccl", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        torch.cuda.set_device(rank)
        model = DetectionModel("yolo11n-biformer.yaml", nc=2, verbose=False)
        model.args = get_cfg()
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model).cuda().train()
        ddp = DistributedDataParallel(model, device_ids=[rank], find_unused_parameters=False)
        for step in range(2):
            loss, _ = ddp(detection_batch(1000 * rank + step, device="cuda"))
            loss.sum().backward()
        assert all(p.grad is not None and p.grad.isfinite().all() for p in model.parameters() if p.requires_grad)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.device_count() < WORLD, reason=f"needs {WORLD} CUDA devices")
def test_sync_batchnorm_ddp_training_on_cuda(tmp_path):
    mp.spawn(_sync_bn_worker, args=(str(tmp_path / "init"),), nprocs=WORLD, join=True)
