#!/usr/bin/env python
"""Thin wrapper: `vgraph ccvgae` (see vgraph/cli/ccvgae.py)."""
from vgraph.cli.ccvgae import main

if __name__ == "__main__":
    main()
