"""`python -m polyvlm` (and `torchrun -m polyvlm`) runs the command line."""

import sys

from polyvlm.cli import main

sys.exit(main())
