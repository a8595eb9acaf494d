import sys

from palloc.cli.main import main

sys.exit(main())
