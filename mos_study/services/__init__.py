"""Services: the logic behind views and commands (``benchmark``: runs and outputs; ``study``: MOS studies)."""
