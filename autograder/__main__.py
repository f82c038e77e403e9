"""``python -m autograder``: the instructor's grading command (``autograder/grading/cli.py``)."""

import sys

from autograder.grading.cli import main

sys.exit(main())
