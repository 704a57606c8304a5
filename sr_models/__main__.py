"""``python -m sr_models upscale ...``, ``python -m sr_models train ...`` and ``python -m sr_models install ...``."""

import sys

USAGE = "usage: python -m sr_models {upscale,train,install} ...  (add --help after the command for its options)"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    command, rest = (argv[0], argv[1:]) if argv else (None, [])
    if command == "upscale":
        from .cli_upscale import main as upscale_main

        return upscale_main(rest)
    if command == "train":
        # Imported only here: upscaling must work without the training code's dependencies.
        from .train.cli import main as train_main

        return train_main(rest)
    if command == "install":
        from .install import main as install_main

        return install_main(rest)
    print(USAGE, file=sys.stderr)
    return 0 if command in ("-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main())
