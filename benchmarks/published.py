"""Published x4 figures to print beside ours.

``PAPER_TABLE2``: the SRGAN paper's Table 2 (Ledig et al., CVPR 2017, arXiv 1609.04802), PSNR (dB) / SSIM on Y with a
4-pixel border removed, keyed by (registry method name, dataset).

SSIM convention: the paper's SSIM column does not follow the convention most SR papers use since (Wang et al.'s
``ssim_index`` on rounded BT.601 Y, which gives bicubic 0.8104 / 0.7027 / 0.6675); its bicubic SSIM is 0.01-0.05
higher, so compare our SSIM with ``COMMON_BICUBIC`` rather than with the paper. Its PSNR agrees with the common
convention to about 0.02 dB.
"""

DATASETS = ("Set5", "Set14", "BSD100")

PAPER_TABLE2 = {
    ("nn", "Set5"): (26.26, 0.7552),
    ("nn", "Set14"): (24.64, 0.7100),
    ("nn", "BSD100"): (25.02, 0.6606),
    ("bicubic", "Set5"): (28.43, 0.8211),
    ("bicubic", "Set14"): (25.99, 0.7486),
    ("bicubic", "BSD100"): (25.94, 0.6935),
    ("srresnet-mse", "Set5"): (32.05, 0.9019),
    ("srresnet-mse", "Set14"): (28.49, 0.8184),
    ("srresnet-mse", "BSD100"): (27.58, 0.7620),
    ("srgan-vgg54", "Set5"): (29.40, 0.8472),
    ("srgan-vgg54", "Set14"): (26.02, 0.7397),
    ("srgan-vgg54", "BSD100"): (25.16, 0.6688),
}

# Bicubic x4 in the common convention (integer Y, ssim_index, 4-pixel border), as in most SR papers' tables.
COMMON_BICUBIC = {
    "Set5": (28.42, 0.8104),
    "Set14": (26.00, 0.7027),
    "BSD100": (25.96, 0.6675),
}


def lookup(method, dataset):
    """The paper's ``(psnr, ssim)`` for a method and dataset, or None where Table 2 has no such pair."""
    return PAPER_TABLE2.get((method, dataset))


# ---------------------------------------------------------------- the paper's order, used by every table and figure

PAPER_METHODS = (
    "nn",
    "bicubic",
    "srresnet-mse",
    "srresnet-vgg22",
    "srgan-mse",
    "srgan-vgg22",
    "srgan-vgg54",
    "hr",
)
METHOD_LABELS = {
    "nn": "NN",
    "bicubic": "Bicubic",
    "srresnet-mse": "SRResNet-MSE",
    "srresnet-vgg22": "SRResNet-VGG22",
    "srgan-mse": "SRGAN-MSE",
    "srgan-vgg22": "SRGAN-VGG22",
    "srgan-vgg54": "SRGAN-VGG54",
    "hr": "HR",
}


def method_key(name):
    """Sort key of a method: the paper's Table 2/Fig. 5 order (NN, bicubic, SRResNet-MSE, SRResNet-VGG22, SRGAN-MSE,
    SRGAN-VGG22, SRGAN-VGG54, HR), then every other method alphabetically (case-insensitive, then exact)."""
    text = str(name)
    folded = text.lower()
    if folded in PAPER_METHODS:
        return (0, PAPER_METHODS.index(folded), "", "")
    return (1, len(PAPER_METHODS), folded, text)


def dataset_key(name):
    """Sort key of a dataset: Set5, Set14, BSD100 (the paper's order), then others alphabetically."""
    text = str(name)
    folded = text.lower()
    known = [d.lower() for d in DATASETS]
    if folded in known:
        return (0, known.index(folded), "", "")
    return (1, len(known), folded, text)


def paper_order(names, kind="method"):
    """``names`` (each once, in the paper's order): ``kind`` is ``"method"`` or ``"dataset"``."""
    if kind not in ("method", "dataset"):
        raise ValueError(f"kind must be 'method' or 'dataset', not {kind!r}")
    key = method_key if kind == "method" else dataset_key
    return sorted(dict.fromkeys(names), key=key)
