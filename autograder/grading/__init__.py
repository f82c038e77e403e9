"""Grading a class: sandboxed, parallel, monkeypatch-proof autograding on top of nbgrader.

In layers, each importing only those below it (``tests/test_structure.py`` checks it):

- :mod:`.protocol` — between kernel and judge: records, test-cell parsing, the recorder call;
- :mod:`.inside` — what runs inside the sandbox (jail entry, warm interpreter, recorder);
- :mod:`.model` — the plain data every layer shares (specs, test cells, jobs, results, verdicts);
- :mod:`.inputs` — the class's submitted files and roster;
- :mod:`.sandbox` — the machine, staging and slots, the jail, a kernel, warm slots, cgroups;
- :mod:`.judge` — every verdict, in the grader's clean process;
- :mod:`.outputs` — grades, report, feedback, hand grades, LMS export;
- the runner: :mod:`.runner`, :mod:`.worker`, :mod:`.execution`, :mod:`.notebook`, :mod:`.spec`,
  :mod:`.cli`, and :mod:`.synthetic` (the synthetic and demo classes, every answer in one bank).

nbgrader's work folders (``class/``) live apart from this code; the course layout
(``courselayout``) says where.
"""
