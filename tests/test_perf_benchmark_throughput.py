"""perf.benchmark_throughput: its subsets, its stand-in weights, and a short run in-process and on a real worker."""

import pytest

from perf import benchmark_throughput as throughput
from sr_models import methods
from sr_models.checkpoint import load_checkpoint
from sr_models.datasets import get_dataset


def test_subsets_copy_the_first_pairs_under_names_of_their_own(shared_datasets, tmp_path):
    data, names = throughput.subset_datasets(shared_datasets, ["Set5", "BSD100"], 2, tmp_path)
    assert names == ["Set5-first2", "BSD100-first2"]
    for name, source in zip(names, ["Set5", "BSD100"]):
        subset, full = get_dataset(name, data_dir=data), get_dataset(source, data_dir=shared_datasets)
        assert [image.name for image in subset.images] == [image.name for image in full.images[:2]]
        # An LR file the set has is copied (not remade): Set5 has them, the shared BSD100 makes LR from HR.
        assert [i.lr_path is None for i in subset.images] == [i.lr_path is None for i in full.images[:2]]
    assert get_dataset(names[0], data_dir=data).images[0].lr_path is not None
    assert throughput.subset_datasets(shared_datasets, ["Set5"], 0, tmp_path / "unused") == (shared_datasets, ["Set5"])


def test_stand_in_weights_load_and_say_they_are_stand_ins(tmp_path):
    folder = throughput.stand_in_weights(tmp_path, ["srgan-vgg54"])
    checkpoint = load_checkpoint(folder / "srgan-vgg54.pt")
    assert checkpoint["provenance"]["stand_in_features"] is True
    assert "stand-in" in checkpoint["provenance"]["note"]
    assert methods.load("srgan-vgg54", weights=folder, device="cpu").needs_weights


def run_lines(capsys, shared_datasets, tmp_path, workers):
    argv = ["--data-dir", str(shared_datasets), "--datasets", "Set5", "--methods", "nn,bicubic,srgan-vgg54"]
    argv += ["--images", "1", "--workers", workers, "--keep", str(tmp_path)]
    assert throughput.main(argv) == 0
    return capsys.readouterr().out.splitlines()


def test_in_process_run_prints_its_rate_beside_the_network_alone(shared_datasets, tmp_path, capsys):
    lines = run_lines(capsys, shared_datasets, tmp_path, "")
    (row,) = [line for line in lines if line.startswith("in-process")]
    assert " 3 outputs " in row and "images/s" in row and "of the network alone" in row
    assert any(line.startswith("reference, the fused network alone") for line in lines)
    assert len(list((tmp_path / "out-in-process" / "outputs").glob("*.png"))) == 3
    provenance = (tmp_path / "out-in-process" / "provenance.csv").read_text().splitlines()
    (vgg54,) = [line for line in provenance if line.startswith("srgan-vgg54,")]
    assert vgg54.startswith("srgan-vgg54,True,True,") and throughput.STAND_IN_NOTE in vgg54


@pytest.mark.slow
def test_a_run_on_a_real_celery_worker(shared_datasets, tmp_path, capsys, require_redis):
    argv = ["--data-dir", str(shared_datasets), "--datasets", "Set5", "--methods", "nn,bicubic"]
    argv += ["--images", "1", "--workers", "1", "--jobs-per-task", "1,4", "--keep", str(tmp_path)]
    assert throughput.main([*argv, "--broker", require_redis]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith("1 workers")]
    assert len(rows) == 2 and "1/task" in rows[0] and "4/task" in rows[1]
    assert all(" 2 outputs " in row and "images/s" in row for row in rows)
    for per_task in (1, 4):
        assert len(list((tmp_path / f"out-1-workers-{per_task}" / "outputs").glob("*.png"))) == 2
