"""The paper's order in every analysis table and figure: datasets Set5, Set14, BSD100, then others; methods NN,
bicubic, SRResNet-MSE, SRResNet-VGG22, SRGAN-MSE, SRGAN-VGG22, SRGAN-VGG54, HR, then others (alphabetical). One
ordering for the whole project: ``benchmarks.published.paper_order`` (and its keys)."""

import pandas as pd

from benchmarks.published import dataset_key, method_key, paper_order

METHOD_COLUMNS = ("method", "method_a", "method_b")


def column_key(column):
    if column in METHOD_COLUMNS:
        return method_key
    if column == "dataset":
        return dataset_key
    return None


def paper_sort(table, columns):
    """``table`` sorted by ``columns`` (stable), datasets and methods in the paper's order, other columns by value;
    the index is reset."""
    if table.empty:
        return table.reset_index(drop=True)
    ranks = {}
    for column in columns:
        values = table[column].astype(str) if column_key(column) else table[column]
        key = column_key(column)
        unique = list(pd.unique(values))
        order = sorted(unique, key=key) if key else sorted(unique, key=lambda v: (pd.isna(v), v))
        ranks[f"__rank_{column}"] = values.map({value: rank for rank, value in enumerate(order)}).to_numpy()
    ranked = table.assign(**ranks)
    ranked = ranked.sort_values(list(ranks), kind="stable")
    return ranked.drop(columns=list(ranks)).reset_index(drop=True)


def methods_in_order(values):
    return paper_order(str(v) for v in values)


def datasets_in_order(values):
    return paper_order((str(v) for v in values), "dataset")
