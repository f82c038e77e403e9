"""The course's grading tools (``python -m autograder --help``)."""
