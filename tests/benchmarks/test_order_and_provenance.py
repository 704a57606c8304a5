"""Tables in the paper's order, provenance marks for learned methods, and partial runs that keep the whole table."""

import csv

import pytest

from benchmarks import published, tables
from benchmarks.runner import StandInFeaturesWarning, run_benchmark

PAPER = ["nn", "bicubic", "srresnet-mse", "srresnet-vgg22", "srgan-mse", "srgan-vgg22", "srgan-vgg54", "hr"]


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_paper_order_of_methods_and_datasets():
    shuffled = ["zeta", "hr", "srgan-vgg54", "Alpha", "srresnet-vgg22", "bicubic", "srgan-mse", "nn"]
    shuffled += ["srgan-vgg22", "srresnet-mse", "beta"]
    assert published.paper_order(shuffled) == PAPER + ["Alpha", "beta", "zeta"]
    assert published.paper_order(["mine", "BSD100", "Set14", "Set5", "Urban100"], "dataset") == [
        "Set5",
        "Set14",
        "BSD100",
        "mine",
        "Urban100",
    ]
    assert published.paper_order(["HR", "NN"]) == ["NN", "HR"]  # case does not matter


def test_summary_and_tables_follow_the_paper_not_the_alphabet(tmp_path):
    per_image = [
        {"dataset": d, "image": "i", "method": m, "psnr_y": 25.0, "ssim_y": 0.7}
        for d in ("mine", "BSD100", "Set14", "Set5")
        for m in ("srgan-vgg54", "bicubic", "my_net", "nn", "srresnet-mse")
    ]
    summary = tables.summarise(per_image)
    assert [r["dataset"] for r in summary][::5] == ["Set5", "Set14", "BSD100", "mine"]
    assert [r["method"] for r in summary[:5]] == ["nn", "bicubic", "srresnet-mse", "srgan-vgg54", "my_net"]
    paths = tables.write_tables(summary, tmp_path, per_image=per_image)
    assert [r["method"] for r in read_rows(paths["per_image_csv"])[:5]] == [r["method"] for r in summary[:5]]
    markdown = paths["markdown"].read_text().splitlines()
    assert markdown[2].startswith("| Set5 | nn |") and markdown[6].startswith("| Set5 | my_net |")


STAND_IN = {
    "trainer": "sr_models.train",
    "preset": "srgan-vgg54",
    "content_loss": "vgg54",
    "adversarial_weight": 1e-3,
    "vgg_weights": "random",
    "data": ["../shared/datasets/train_demo"],
    "metrics": {"psnr": 27.5, "ssim": 0.8},
    "training_steps": 40,
}


def test_provenance_line_and_stand_in_rule():
    assert tables.is_stand_in(STAND_IN)
    assert not tables.is_stand_in({**STAND_IN, "vgg_weights": "torchvision IMAGENET1K_V1"})
    assert not tables.is_stand_in({"content_loss": "mse", "vgg_weights": None})
    assert tables.is_stand_in({"content_loss": "mse", "stand_in_features": True})  # the installer's word wins
    line = tables.provenance_line("srgan-vgg54", STAND_IN)
    assert line.startswith("srgan-vgg54: sr_models.train srgan-vgg54, 40 updates on train_demo, vgg54 content loss")
    assert "VGG weights: random" in line and "validation PSNR 27.50 dB" in line and tables.STAND_IN_MARK in line


def test_markdown_and_latex_mark_stand_in_models():
    summary = [{"dataset": "Set5", "method": "srgan-vgg54", "n_images": 5, "psnr_y": 27.0, "ssim_y": 0.8}]
    provenance = [tables.provenance_row("srgan-vgg54", {"weights": "w.pt", "step": 40, "provenance": STAND_IN})]
    text = tables.markdown_table(summary, "integer", 4, provenance=provenance)
    assert "| Set5 | srgan-vgg54 \u2020 | 5 |" in text
    assert "- \u2020 trained with stand-in VGG features" in text
    assert "- srgan-vgg54: sr_models.train srgan-vgg54, 40 updates" in text
    latex = tables.latex_table(summary, "integer", 4, provenance=provenance)
    assert r"Set5 & srgan-vgg54$^\dagger$ & 5" in latex and "40 updates" in latex


def save_generator(path, method, provenance):
    import torch

    from sr_models.archs.srresnet import SRResNet
    from sr_models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(path, SRResNet(num_features=8, num_blocks=1), method=method, step=40, provenance=provenance)


def test_run_benchmark_warns_and_marks_a_stand_in_model(wing_set, tmp_path):
    weights = tmp_path / "weights"
    save_generator(weights / "srgan-vgg54.pt", "srgan-vgg54", STAND_IN)
    save_generator(weights / "srresnet-mse.pt", "srresnet-mse", {**STAND_IN, "content_loss": "mse", "preset": None})
    out = tmp_path / "out"
    with pytest.warns(StandInFeaturesWarning, match="srgan-vgg54 was trained with stand-in VGG features"):
        result = run_benchmark(
            [str(wing_set)], ["srgan-vgg54", "bicubic", "srresnet-mse"], out, weights_dir=weights, progress=False
        )
    rows = {row["method"]: row for row in read_rows(out / "provenance.csv")}
    assert list(rows) == ["bicubic", "srresnet-mse", "srgan-vgg54"]  # paper order
    assert rows["srgan-vgg54"]["stand_in_features"] == "True" and rows["srresnet-mse"]["stand_in_features"] == "False"
    assert rows["bicubic"]["learned"] == "False" and rows["bicubic"]["line"] == ""
    assert len(rows["srgan-vgg54"]["weights_sha256"]) == 64
    assert "srgan-vgg54 \u2020" in result.markdown and "- srresnet-mse: sr_models.train srresnet-mse" in result.markdown
    methods = [line.split(" | ")[1] for line in result.markdown.splitlines()[2:5]]
    assert methods == ["bicubic", "srresnet-mse", "srgan-vgg54 \u2020"]

    # A later run of another method keeps the learned methods' rows and marks.
    again = run_benchmark([str(wing_set)], ["bicubic"], out, weights_dir=weights, progress=False)
    assert "srgan-vgg54 \u2020" in again.markdown and len(again.summary) == 3


@pytest.mark.slow
def test_a_partial_run_keeps_every_row_the_folder_holds(embedded_datasets, tmp_path):
    out = tmp_path / "out"
    run_benchmark(["Set5"], ["bicubic", "nn"], out, data_dir=embedded_datasets, progress=False)
    full = read_rows(out / "metrics_per_image.csv")
    summary = (out / "metrics_summary.md").read_text()
    result = run_benchmark(["Set5"], ["nn"], out, data_dir=embedded_datasets, progress=False)
    assert len(result.per_image) == 5 and result.n_generated == 0  # this run's rows
    assert read_rows(out / "metrics_per_image.csv") == full  # the tables: everything the folder holds
    assert len(full) == 10 and [r["method"] for r in full[:6]] == ["nn"] * 5 + ["bicubic"]
    assert (out / "metrics_summary.md").read_text() == summary
    assert len(read_rows(out / "outputs.csv")) == 10

    # Rows measured with another convention are left out of this run's tables, and a note says so.
    other = run_benchmark(["Set5"], ["nn"], out, data_dir=embedded_datasets, progress=False, convention="float")
    assert len(other.table_per_image) == 5
    assert "5 outputs in outputs.csv were measured with another Y convention" in other.markdown
