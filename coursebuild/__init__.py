"""Instructor-side course build: student notebooks, reference runs, the site and the release.

``courselayout`` is the one place that knows where things are (read from ``nbgrader_config.py``);
``coursebuild.build`` holds the build steps, ``coursebuild.release`` the student release,
``coursebuild.generated`` the generated files of the student package, and ``coursebuild.cli`` the
command line (``dlnn-course STEP``, or ``python scripts/course.py STEP``).  Not part of the student
package.
"""
