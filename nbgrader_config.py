"""nbgrader configuration of the course.

Folders (relative to this file):

* ``solutions/<tutorial>/<tutorial>.ipynb`` — instructor notebooks, the single source (nbgrader's
  "source" folder);
* ``tutorials/<tutorial>/<tutorial>.ipynb`` — student notebooks generated from them (nbgrader's
  "release" folder, committed);
* ``class/`` — nbgrader's work folder: the gradebook and the submitted / autograded / feedback
  folders (not committed; the grading code is in ``autograder/``, apart from them).
"""

import os

try:
    _ROOT = os.path.dirname(os.path.abspath(__file__))
except NameError:  # loaded without __file__: assume the current folder is the course root
    _ROOT = os.getcwd()

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "dlnn-course"
c.CourseDirectory.root = _ROOT
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "tutorials"
c.CourseDirectory.submitted_directory = os.path.join("class", "submitted")
c.CourseDirectory.autograded_directory = os.path.join("class", "autograded")
c.CourseDirectory.feedback_directory = os.path.join("class", "feedback")
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_ROOT, "class", "gradebook.db")

# Student notebooks start without outputs; nbgrader's own header/footer are not used.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Executing a tutorial while grading: generous per-cell time, and the kernel of this environment.
c.ExecutePreprocessor.timeout = 300
c.ExecutePreprocessor.kernel_name = "python3"
