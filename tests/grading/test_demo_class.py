"""The README's demo class is generated from the current student notebook (never stale)."""

from __future__ import annotations

from autograder.grading import synthetic


def test_the_demo_class_is_up_to_date(tmp_path):
    written = synthetic.write_demo_class(tmp_path)
    assert len(written) == len(synthetic.DEMO_STUDENTS) == 5
    for path in written:
        committed = synthetic.DEMO_CLASS / path.relative_to(tmp_path)
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed} is stale: python -c 'from autograder.grading.synthetic import "
            "write_demo_class; write_demo_class()'"
        )
    untouched = (synthetic.DEMO_CLASS / "dmitri" / synthetic.T1 / f"{synthetic.T1}.ipynb").read_text()
    assert "raise NotImplementedError" in untouched
    assert "dlnn.initializer_" not in (synthetic.DEMO_CLASS / "ada" / f"{synthetic.T1}.ipynb").read_text()
