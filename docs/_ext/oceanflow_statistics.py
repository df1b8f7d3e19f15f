"""``.. oceanflow-statistics::`` directive: the table of ``oceanflow.climatology``'s statistics.

Generated from the registry (:data:`oceanflow.kernels.climatology.STATISTICS`),
so that a statistic added there appears here without another edit.
"""

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

UNITS = {"same": "input's", "squared": "input's squared", "1": "1"}
COLUMNS = ("stat", "what", "kind", "cell_methods", "units", "parameters", "adds dimension")


def rows():
    """One row of text per registered statistic."""
    from oceanflow.kernels.climatology import STATISTICS

    for name, s in STATISTICS.items():
        kind = "order statistic (whole series per task)" if s.kind == "order" else "combinable partials"
        parameters = ", ".join(f"{p}=" for p in s.parameters) or "-"
        dim = f"``{s.dim}`` (when ``q`` is a sequence)" if s.dim else "-"
        yield (f"``{name}``", s.summary, kind, f"``time: {s.cell_method}``", UNITS[s.units], parameters, dim)


class OceanflowStatistics(SphinxDirective):
    has_content = False

    def run(self):
        table = nodes.table()
        group = nodes.tgroup(cols=len(COLUMNS))
        table += group
        group.extend(nodes.colspec(colwidth=1) for _ in COLUMNS)
        head = nodes.thead()
        head += self._row(COLUMNS)
        body = nodes.tbody()
        body.extend(self._row(row) for row in rows())
        group += head
        group += body
        return [table]

    def _row(self, cells):
        row = nodes.row()
        for text in cells:
            entry = nodes.entry()
            paragraph, _ = self.state.inline_text(text, self.lineno)
            entry += nodes.paragraph("", "", *paragraph)
            row += entry
        return row


def setup(app):
    app.add_directive("oceanflow-statistics", OceanflowStatistics)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
