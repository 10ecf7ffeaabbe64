#!/usr/bin/env python
"""Thin wrapper: `vgraph metagraph` (see vgraph/cli/metagraph.py)."""
from vgraph.cli.metagraph import main

if __name__ == "__main__":
    main()
