"""``.. oceanflow-cli::`` directive: the ``--help`` text of the command and each subcommand.

The CLI reference is generated from the argument parser itself, so it cannot
drift from the code.
"""

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


class OceanflowCli(SphinxDirective):
    has_content = False

    def run(self):
        import os

        from oceanflow.cli import build_parser

        os.environ["COLUMNS"] = "100"  # stable wrapping of argparse's help
        parser = build_parser()
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        result = [nodes.literal_block(text=parser.format_help(), language="text")]
        for name, subparser in sub.choices.items():
            section = nodes.section(ids=[f"oceanflow-{name}"])
            section += nodes.title(text=f"oceanflow {name}")
            section += nodes.literal_block(text=subparser.format_help(), language="text")
            result.append(section)
        return result


def setup(app):
    app.add_directive("oceanflow-cli", OceanflowCli)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
