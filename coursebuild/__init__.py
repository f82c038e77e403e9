"""Instructor-side course build: the course layout, student notebooks, reference runs and the site.

``coursebuild.layout`` is the one module that knows where things are (read from
``nbgrader_config.py``); ``coursebuild.build`` holds the build steps; ``scripts/course.py`` is the
command line (``python scripts/course.py all``).  Not part of the student package.
"""
