import sys

from rlcanon.cli import main

sys.exit(main())
