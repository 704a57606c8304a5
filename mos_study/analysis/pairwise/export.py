"""Pairwise results as files: the CSV tables (every cell through ``sr_models.csvcells`` by the ACR side's
``to_csv_text``), the summary text, and the figures; written all-or-nothing with the ACR side's ``write_files``."""

from ..export import to_csv_text, write_files


def render_pairwise_files(results, figures=True):
    """File name -> bytes: pairwise_*.csv, pairwise_summary.txt and (with ``figures``) pairwise_scale.png,
    pairwise_wins.png and, with MOS, pairwise_mos.png."""
    files = {name: to_csv_text(table).encode() for name, table in results.tables().items()}
    files["pairwise_summary.txt"] = ("\n".join(results.summary) + "\n").encode()
    if figures:
        from .figures import PAIRWISE_FIGURES  # matplotlib only when figures are wanted

        for name, make in PAIRWISE_FIGURES.items():
            data = make(results, "png")
            if data is not None:
                files[f"{name}.png"] = data
    return files


def write_pairwise_results(results, output_dir, figures=True):
    """Write every pairwise file under output_dir, all or nothing; returns the names written."""
    return write_files(render_pairwise_files(results, figures=figures), output_dir)
