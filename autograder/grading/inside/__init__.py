"""Code that runs inside the sandbox, apart from the grader's host code.

- :mod:`.enter_jail` — a stand-alone script (standard library only): it builds one job's jail
  (bubblewrap, or its own chroot as root) and starts the kernel, or the warm interpreter, in it;
- :mod:`.zygote` — the warm interpreter of a slot, staged as ``_dlnn_grading_zygote``: it imports
  once, then forks one kernel per job;
- :mod:`.recorder` — imported by the student's kernel as ``_dlnn_grading_recorder``: it records
  each check call of a test cell for the judge (and judges nothing).

None of them imports the grader: in the sandbox they see the standard library, numpy, torch, the
student package and the protocol's record model (:mod:`autograder.grading.protocol.records`,
staged next to them).  The staged names and files are in :mod:`autograder.grading.protocol.calls`.
"""
