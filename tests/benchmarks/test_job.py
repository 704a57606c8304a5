"""The runner's Job: one dataclass holds what a worker needs, and it crosses a task queue as JSON."""

import json

import pytest

from benchmarks.errors import BenchmarkError
from benchmarks.runner import Job, execute_job, plan_jobs
from sr_models.errors import SRMOSError


def test_planned_jobs_cross_json_unchanged(embedded_datasets, tmp_path):
    out = tmp_path / "out"
    jobs = plan_jobs(["Set5"], ["nn"], out, data_dir=embedded_datasets)
    assert len(jobs) == 5 and all(isinstance(job, Job) for job in jobs)
    wire = json.loads(json.dumps([job.to_dict() for job in jobs]))
    assert [Job.from_dict(data) for data in wire] == jobs
    first = jobs[0]
    assert (first.dataset, first.image, first.method, first.source, first.scale) == (
        "Set5",
        "img_001",
        "nn",
        "generated",
        4,
    )
    assert (first.output_dir, first.convention, first.crop_border) == (str(out), "integer", 4)
    assert first.hr_path.endswith("img_001_SRF_4_HR.png") and first.lr_path.endswith("img_001_SRF_4_LR.png")
    assert Job.from_dict(first) is first


def test_execute_job_takes_a_job_or_its_dict(embedded_datasets, tmp_path):
    job = plan_jobs(["Set5"], ["bicubic"], tmp_path, data_dir=embedded_datasets)[1]
    from_job, from_dict = execute_job(job), execute_job(job.to_dict())
    from_job.pop("seconds"), from_dict.pop("seconds")
    assert from_job == from_dict and from_job["job_key"] == job.key and from_job["image"] == "img_002"
    assert json.loads(json.dumps(from_job)) == from_job


def test_harness_errors_are_benchmark_errors(embedded_datasets, tmp_path):
    assert issubclass(BenchmarkError, SRMOSError)
    with pytest.raises(BenchmarkError, match=r"give each method once, at least one: got \['nn', 'nn'\]"):
        plan_jobs(["Set5"], ["nn", "nn"], tmp_path, data_dir=embedded_datasets)
    with pytest.raises(SRMOSError, match="unknown Y convention 'bt709'; choose one of integer, float"):
        plan_jobs(["Set5"], ["nn"], tmp_path, data_dir=embedded_datasets, convention="bt709")
    assert not list(tmp_path.iterdir())  # refused before anything was written
