"""The protocol between the kernel and the judge, in one place.

- :mod:`.records` — what the recorder writes in the kernel and the judge reads (the record model,
  bounded loading); staged into the sandbox as a module of its own, so standard library, numpy and
  torch only;
- :mod:`.cells` — a test cell's check calls (:func:`~.cells.parse_test_cell`) and a solution
  cell's names;
- :mod:`.calls` — the staged modules' names and the recorder call run for a test cell.

Nothing here imports the rest of the grader.
"""
