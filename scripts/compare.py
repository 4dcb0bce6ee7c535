#!/usr/bin/env python
"""Compare YOLO models with and without BiFormer routing attention: forwards to ``ultralytics-biformer compare``.

Usage: python scripts/compare.py [key=value ...]   (see ``python scripts/compare.py help``)
"""

import sys

from ultralytics_biformer.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
