"""``python -m coursebuild`` = ``python scripts/course.py``."""

import sys

from .build import main

sys.exit(main())
