"""`python -m hf_lrsched`: the `hf-lrsched` command line."""

import sys

from .cli import main

sys.exit(main())
