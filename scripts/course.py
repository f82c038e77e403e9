"""Build the course (see ``coursebuild.build``): ``python scripts/course.py all``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coursebuild.build import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
