"""What grading writes for people: the instructor's report, each student's feedback, the hand
grades, the learning platform's grade files.

- :mod:`.report` — ``grades.csv`` and ``report.html`` (and safe writing of both);
- :mod:`.mistakes` — what the class got wrong, per exercise (for the report);
- :mod:`.feedback` — one student's feedback page;
- :mod:`.handgrades` and :mod:`.formgrade` — nbgrader's hand marks in, its formgrader started;
- :mod:`.lms_export` — grades written for Canvas and Moodle.
"""
