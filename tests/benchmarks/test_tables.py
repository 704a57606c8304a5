import math

import pytest

from benchmarks import tables
from benchmarks.tables import csv_text, latex_escape, latex_table, markdown_table, read_csv, summarise, write_tables
from sr_models import fileio

PER_IMAGE = [
    {"dataset": "Set5", "image": "img_001", "method": "bicubic", "psnr_y": 30.0, "ssim_y": 0.9},
    {"dataset": "Set5", "image": "img_002", "method": "bicubic", "psnr_y": 27.0, "ssim_y": 0.8},
    {"dataset": "Set5", "image": "img_001", "method": "my_net", "psnr_y": 31.123456789012345, "ssim_y": 0.91},
    {"dataset": "Set14", "image": "img_001", "method": "bicubic", "psnr_y": 26.0, "ssim_y": 0.7},
]


def test_summary_means_in_the_papers_order():
    summary = summarise(PER_IMAGE)
    assert [(r["dataset"], r["method"], r["n_images"]) for r in summary] == [
        ("Set5", "bicubic", 2),
        ("Set5", "my_net", 1),
        ("Set14", "bicubic", 1),
    ]
    assert summary[0]["psnr_y"] == 28.5 and summary[0]["ssim_y"] == pytest.approx(0.85, abs=1e-15)


def test_csv_keeps_full_precision(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(csv_text(tables.PER_IMAGE_COLUMNS, PER_IMAGE))
    rows = read_csv(path)
    assert list(rows[0]) == ["dataset", "image", "method", "psnr_y", "ssim_y"]
    assert float(rows[2]["psnr_y"]) == 31.123456789012345


def test_markdown_table_rounds_and_shows_the_paper():
    text = markdown_table(summarise(PER_IMAGE), "integer", 4)
    lines = text.splitlines()
    assert lines[0] == "| dataset | method | images | PSNR (dB) | SSIM | paper PSNR | paper SSIM |"
    assert lines[2] == "| Set5 | bicubic | 2 | 28.50 | 0.8500 | 28.43 | 0.8211 |"
    assert lines[3] == "| Set5 | my_net | 1 | 31.12 | 0.9100 | - | - |"
    assert lines[4] == "| Set14 | bicubic | 1 | 26.00 | 0.7000 | 25.99 | 0.7486 |"
    assert "'integer' convention" in text and "4 pixels removed" in text


def test_identical_images_print_inf():
    summary = summarise([{"dataset": "d", "image": "a", "method": "hr", "psnr_y": math.inf, "ssim_y": 1.0}])
    assert "| d | hr | 1 | inf | 1.0000 | - | - |" in markdown_table(summary, "float", 0)


def test_latex_table_escapes_names():
    text = latex_table(summarise(PER_IMAGE), "integer", 4)
    assert r"Set5 & my\_net & 1 & 31.12 & 0.9100 & - & - \\" in text
    assert r"Set5 & bicubic & 2 & 28.50 & 0.8500 & 28.43 & 0.8211 \\" in text
    assert latex_escape(r"a&b%c#d$e{f}g~h^i\j") == (
        r"a\&b\%c\#d\$e\{f\}g\textasciitilde{}h\textasciicircum{}i"
        r"\textbackslash{}j"
    )


def test_write_tables_writes_four_files(tmp_path):
    summary = summarise(PER_IMAGE)
    paths = write_tables(summary, tmp_path / "out", per_image=PER_IMAGE)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths.values())
    assert "provenance_csv" not in paths  # written only when the runner gives the methods' provenance
    assert [r["method"] for r in read_csv(paths["summary_csv"])] == ["bicubic", "my_net", "bicubic"]
    assert len(read_csv(paths["per_image_csv"])) == 4
    assert paths["markdown"].read_text() == markdown_table(summary, "integer", 4)


def test_a_failure_while_writing_leaves_the_previous_tables(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_tables(summarise(PER_IMAGE), out, per_image=PER_IMAGE)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tables, "latex_table", broken)
    with pytest.raises(RuntimeError):
        write_tables(summarise(PER_IMAGE[:1]), out, per_image=PER_IMAGE[:1])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no change, no temporary files left

    monkeypatch.setattr(fileio.os, "replace", broken)
    with pytest.raises(RuntimeError):
        write_tables(summarise(PER_IMAGE[:1]), out, per_image=PER_IMAGE[:1])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
