import sys

from genoquery.launch import main

sys.exit(main())
