"""CSV cells that a spreadsheet never runs: the one place where srmos neutralises formula injection.

Every CSV the project writes (the benchmark tables and manifest, a study's ratings and analysis tables, the streamed
downloads) passes its cells through ``safe_cell``. A text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return would open as a formula in Excel, LibreOffice or Google Sheets (``=HYPERLINK(...)``, ``+cmd|...``,
``@SUM(...)``), so it gets a leading single quote, as OWASP advises ("CSV Injection"); the quote shows in the cell and
the text is kept. Numbers stay numbers: ints and floats are never touched, nor is text that is a plain number
(``-3``, ``-0.25``, ``1e-05``), so the export of ordinary data is byte for byte what it was.

No dependency beyond the standard library, so every layer (``sr_models``, ``benchmarks``, ``mos_study``) may use it.
"""

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def safe_cell(value):
    """``value`` unchanged, unless it is text a spreadsheet would read as a formula: then ``"'" + value``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_row(values):
    """A list of ``safe_cell`` values (for ``csv.writer.writerow``)."""
    return [safe_cell(value) for value in values]


def safe_dict(row):
    """A dict with every value ``safe_cell``-ed (for ``csv.DictWriter.writerow``)."""
    return {key: safe_cell(value) for key, value in row.items()}
