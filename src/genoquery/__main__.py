import sys

from genoquery.cli import main

sys.exit(main())
