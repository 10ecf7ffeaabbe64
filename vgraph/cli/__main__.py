import sys

from vgraph.cli import main

sys.exit(main())
