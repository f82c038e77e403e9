"""What the grader reads of the class: the submitted files and the roster.

- :mod:`.submissions` — a folder or zip of submissions, read safely, one :class:`Submission` each;
- :mod:`.lms_names` — a learning platform's file names (Canvas, Moodle, Google Classroom);
- :mod:`.roster` — the class list mapping names and ids to student ids.
"""
