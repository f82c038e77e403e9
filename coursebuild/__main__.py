"""``python -m coursebuild`` = ``dlnn-course`` = ``python scripts/course.py``."""

import sys

from .cli import main

sys.exit(main())
