#!/usr/bin/env python
"""Thin wrapper: `vgraph isoc` (see vgraph/cli/isoc.py)."""
from vgraph.cli.isoc import main

if __name__ == "__main__":
    main()
