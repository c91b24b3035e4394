"""``python -m dermlib``: see :mod:`dermlib.cli`."""

import sys

from dermlib.cli import main

if __name__ == "__main__":
    sys.exit(main())
