"""The judge: every verdict, computed in the grader's own clean process.

- :mod:`.replay` — replays a test cell's recorded check calls against the genuine checks;
- :mod:`.shortcuts` — refused routines found in an exercise's code (a test scores 0);
- :mod:`.static_look` — what a person should read in a passed answer (flagged, the score stands).
"""
