import sys

from autotimm.cli import main

sys.exit(main())
