"""No exercise or Think! question is answered above it, in what the student reads first.

For every answer cell of every solution notebook (a graded exercise's solution region, a Think!
question's sample answer), the *key content* of the answer must not appear earlier in the student
notebook: in the cells above it (markdown, code, docstrings, imports, printed text of the source)
and in the student's own version of the cell (its template and docstring).  The student notebook is
the one ``generate`` writes, so the solutions of earlier exercises, which students never see, do not
count as "above".

Key content, chosen so that a match means the answer was given away and not that two texts share
ordinary words:

* **sentences** of a sample answer: every run of :data:`N_WORDS` consecutive words (lower case,
  formulas and punctuation removed) that holds at least :data:`CONTENT_WORDS` words outside a short
  list of function words and numbers (so that the name of a printed measurement, "elbows within
  0.02 of a kink", which an answer may quote, is not a sentence of it);
* **formulas** of a sample answer: every LaTeX formula of at least :data:`MIN_FORMULA` characters
  with an equation, an update or an operator in it, compared with spacing commands and blanks
  removed;
* **code** of a solution: every line of the solution region of at least :data:`MIN_CODE_TOKENS`
  Python tokens that does not open a block (the frame a template gives), compared with blanks
  removed.

Known limit: a formula restated in another notation (a LaTeX update rewritten as Unicode in a
docstring, ``θ ← θ − lr · (∇L + λθ)``) is not recognised; the review of the text is.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass

import nbformat
import pytest

from courselayout import solution_path, student_path

from ..tools import TUTORIALS

N_WORDS = 7
CONTENT_WORDS = 4
MIN_FORMULA = 12
MIN_CODE_TOKENS = 6

FUNCTION_WORDS = frozenset("""
a an the and or but nor so of in on at to for from by with without as is are was were be been being
it its this that these those there here which who whom whose what when where why how than then
not no do does did has have had can could will would shall should may might must also only just
very more most less much many some any all each every one two if else into onto over under about
we you they he she our your their them us i me my above below between within after before up
down out off again same other such both
""".split())

_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.S)
_SPACING = re.compile(r"\\[,;:! ]|\\(?:big|Big|bigg|Bigg|left|right)\b|\s+")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@dataclass(frozen=True)
class Answer:
    """One answer cell: where it is and what it holds."""

    tutorial: str
    cell_id: str
    grade_id: str
    kind: str  # "code" or "markdown"
    text: str  # the solution region, or the whole sample answer

    def __str__(self) -> str:
        return f"{self.tutorial}:{self.grade_id}"


def _solution_region(source: str) -> str:
    lines, inside = [], False
    for line in source.splitlines():
        if line.strip() == "### BEGIN SOLUTION":
            inside = True
        elif line.strip() == "### END SOLUTION":
            inside = False
        elif inside:
            lines.append(line)
    return "\n".join(lines)


def _answers() -> list[Answer]:
    found = []
    for tutorial in TUTORIALS:
        nb = nbformat.read(solution_path(tutorial), as_version=4)
        for cell in nb.cells:
            grading = cell.metadata.get("nbgrader", {})
            if not grading.get("solution"):
                continue
            text = _solution_region(cell.source) if cell.cell_type == "code" else cell.source
            found.append(Answer(tutorial, cell.id, grading["grade_id"], cell.cell_type, text))
    return found


ANSWERS = _answers()


def _formulas(text: str) -> list[str]:
    return [_SPACING.sub("", a or b) for a, b in _MATH.findall(text)]


def _words(text: str) -> list[str]:
    prose = _MATH.sub(" ", text).lower().replace("’", "'")
    return _WORD.findall(prose)


def _ngrams(words: list[str], n: int = N_WORDS) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def _key_sentences(text: str) -> set[tuple[str, ...]]:
    return {gram for gram in _ngrams(_words(text))
            if sum(word not in FUNCTION_WORDS and not word.isdigit() for word in gram) >= CONTENT_WORDS}


_GIVEN_VALUE = re.compile(r"\\?[A-Za-z]+(?:_\{?\w+\}?)?=[-+\d.^{}]+")
"""A symbol and its value (``\\varepsilon=10^{-8}``): a setting the question states, not an answer."""


def _key_formulas(text: str) -> set[str]:
    return {f for f in _formulas(text)
            if len(f) >= MIN_FORMULA and re.search(r"=|\\leftarrow|\\approx|[+\-*/]", f)
            and not _GIVEN_VALUE.fullmatch(f)}


def _n_tokens(line: str) -> int:
    count = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(line).readline):
            count += token.type in (tokenize.NAME, tokenize.OP, tokenize.NUMBER, tokenize.STRING)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return count


STRUCTURE = ("for ", "if ", "elif ", "else", "while ", "with ", "try", "except", "#")
"""Lines that open a block (``for x in model.parameters():``, ``with torch.no_grad():``) are the
frame the templates give, not an answer."""


def _key_code(text: str) -> set[str]:
    return {re.sub(r"\s+", "", line) for line in text.splitlines()
            if not line.strip().startswith(STRUCTURE) and _n_tokens(line.strip()) >= MIN_CODE_TOKENS}


def _above(answer: Answer) -> str:
    """What the student reads before answering: the student notebook's cells above the answer's,
    and the student's own version of the answer cell."""
    nb = nbformat.read(student_path(answer.tutorial), as_version=4)
    ids = [cell.get("id") for cell in nb.cells]
    assert answer.cell_id in ids, f"{answer}: cell {answer.cell_id} is not in the student notebook"
    return "\n".join(cell.source for cell in nb.cells[: ids.index(answer.cell_id) + 1])


def given_away(answer: Answer, above: str) -> list[str]:
    """The key content of ``answer`` that ``above`` already shows (empty: none)."""
    found = []
    if answer.kind == "markdown":
        earlier = _ngrams(_words(above))
        found += [" ".join(g) for g in sorted(_key_sentences(answer.text) & earlier)]
        formulas = "".join(_formulas(above))
        found += [f"${f}$" for f in sorted(_key_formulas(answer.text)) if f in formulas]
    code_above = re.sub(r"\s+", "", above)
    found += [line for line in sorted(_key_code(answer.text)) if line in code_above]
    return found


def test_the_answers_have_key_content_to_guard():
    assert len(ANSWERS) > 40
    assert {a.kind for a in ANSWERS} == {"code", "markdown"}
    unguarded = [str(a) for a in ANSWERS
                 if not (_key_sentences(a.text) or _key_formulas(a.text) or _key_code(a.text))]
    assert len(unguarded) < len(ANSWERS) / 10, unguarded


def test_the_extraction_finds_a_given_away_answer_and_ignores_ordinary_words():
    think = Answer("T", "c", "think", "markdown", "*Sample answer.* Every step first shrinks all weights "
                   "by the factor $1 - \\eta\\lambda$, then takes the ordinary gradient step: "
                   "$\\theta \\leftarrow (1 - \\eta\\lambda)\\,\\theta - \\eta\\, g$.")
    code = Answer("T", "d", "ex", "code", "    x -= learning_rate * x.grad\n    x.grad = None")
    assert given_away(think, "We now add weight decay to the loss.") == []
    assert given_away(think, "Note: every step first shrinks all weights by the factor 1 - lr wd.")
    assert given_away(think, "$\\theta\\leftarrow(1-\\eta\\lambda)\\theta-\\eta g$ is the update.")
    assert given_away(code, "update x in place with learning_rate and x.grad") == []
    assert given_away(code, "2. update `x -= learning_rate * x.grad` in place")


@pytest.mark.parametrize("answer", ANSWERS, ids=str)
def test_no_answer_is_given_away_above_it(answer):
    assert given_away(answer, _above(answer)) == [], (
        f"{answer} (cell {answer.cell_id}) is answered above it, in the student notebook")
