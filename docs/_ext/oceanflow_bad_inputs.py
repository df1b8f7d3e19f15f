"""``.. oceanflow-bad-inputs::`` directive: the table of bad inputs and the message each gets.

The cases are ``tests/bad_inputs.py``, the list the test suite runs
(``tests/test_bad_inputs.py``); each is run here, at build time, in a
temporary directory, and its message shown as it is.  A case that does not
get its clear error is a build warning (an error under ``sphinx -W``).
"""

import sys
import tempfile
from pathlib import Path

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

TESTS = Path(__file__).resolve().parents[2] / "tests"
logger = logging.getLogger(__name__)


class BadInputs(SphinxDirective):
    has_content = False

    def run(self):
        sys.path.insert(0, str(TESTS))
        try:
            import bad_inputs
        finally:
            sys.path.remove(str(TESTS))
        outcomes = []
        for case in bad_inputs.CASES:
            with tempfile.TemporaryDirectory() as directory:
                outcome = bad_inputs.run_case(case, Path(directory))
            outcome.message = outcome.message.replace(directory, "DIR")
            outcomes.append(outcome)
            if outcome.kind != "clear":
                text = f"bad input {case.input!r}: {outcome.kind}: {outcome.message}"
                logger.warning(text, location=self.get_location())
        counts = bad_inputs.tally(outcomes)
        summary = nodes.paragraph(text="; ".join(f"{label}: {n}" for label, n in counts.items()) + ".")
        return [summary, self._table(bad_inputs.CASES, outcomes)]

    @staticmethod
    def _table(cases, outcomes):
        table = nodes.table(classes=["longtable"])
        group = nodes.tgroup(cols=3)
        table += group
        for width in (12, 38, 50):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        head += _row(["Area", "Input", "Message"])
        group += head
        body = nodes.tbody()
        for case, outcome in zip(cases, outcomes, strict=True):
            body += _row([case.area, case.input, outcome.message], literal=(1, 2))
        group += body
        return table


def _row(cells, literal=()):
    """A table row; cells in ``literal`` are shown verbatim (no typographic quotes or dashes)."""
    row = nodes.row()
    for i, text in enumerate(cells):
        entry = nodes.entry()
        entry += nodes.paragraph("", "", nodes.literal(text=text) if i in literal else nodes.Text(text))
        row += entry
    return row


def setup(app):
    app.add_directive("oceanflow-bad-inputs", BadInputs)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
