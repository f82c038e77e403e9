"""The instructor's command line without the install: ``python scripts/course.py STEP``.

The same command as ``dlnn-course STEP``.

The command is ``coursebuild.cli`` (``pyproject.toml``'s ``[project.scripts]``); this file only finds
the repository from any folder.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coursebuild.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
