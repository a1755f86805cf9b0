"""``python -m nonsite``."""

import sys

from nonsite.cli import main

# Guarded: the pipeline process (multiprocessing spawn) imports this module again.
if __name__ == "__main__":
    sys.exit(main())
