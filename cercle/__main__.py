import sys

from cercle.cli import main

sys.exit(main())
