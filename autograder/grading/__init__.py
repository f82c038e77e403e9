"""Grading a class: sandboxed, parallel, monkeypatch-proof autograding on top of nbgrader."""
