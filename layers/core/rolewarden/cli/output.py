"""What the operator and scripts see: plain text or rich tables on stdout, one JSON document for
scripts, warnings and errors on stderr, and the exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rolewarden.settings import current

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
#: ``breaker status`` when the breaker is tripped (scripts and monitors can test it).
EXIT_TRIPPED = 3


class Out:
    """Tables and colour on a terminal, plain text when piped, one JSON document for scripts.
    Warnings and errors go to stderr, so stdout stays parseable."""

    def __init__(self, as_json: bool = False, stream: Any = None, errors: Any = None) -> None:
        self.stream = stream or sys.stdout
        self.errors = errors or sys.stderr
        self.as_json = as_json
        self.console: Any = None
        if not as_json and isatty(self.stream) and not current().no_color:
            try:
                from rich.console import Console
            except ImportError:  # rich is optional: plain text without it
                pass
            else:
                self.console = Console(file=self.stream)

    @property
    def rich(self) -> bool:
        return self.console is not None

    def line(self, text: str = "", style: str = "") -> None:
        if self.as_json:
            return
        if self.console is not None:
            self.console.print(text, style=style or None, highlight=False, markup=False)
        else:
            print(text, file=self.stream)

    def warn(self, text: str) -> None:
        print(f"warning: {text}", file=self.errors)

    def error(self, text: str) -> None:
        print(f"error: {text}", file=self.errors)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.as_json or not rows:
            return
        if self.console is not None:
            from rich.table import Table

            table = Table(title=title, title_justify="left")
            for column in columns:
                table.add_column(column, overflow="fold")
            for row in rows:
                table.add_row(*[str(cell) for cell in row])
            self.console.print(table)
            return
        print(title, file=self.stream)
        widths = [min(max(len(str(c)), *(len(str(r[i])) for r in rows)), 80) for i, c in enumerate(columns)]
        print("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(columns)).rstrip(), file=self.stream)
        for row in rows:
            print("  ".join(str(v).ljust(widths[i]) for i, v in enumerate(row)).rstrip(), file=self.stream)
        print(file=self.stream)

    def json(self, data: Any) -> None:
        print(json.dumps(data, indent=2, sort_keys=True, default=str), file=self.stream)

    def report(self, report: dict[str, Any], indent: str = "", first: str = "") -> None:
        """Nested dicts and lists as indented YAML-like lines (``first`` prefixes the first line: a list
        dash)."""
        for key, value in report.items():
            lead, first = (first or indent), ""
            if isinstance(value, dict):
                self.line(f"{lead}{key}:" + ("" if value else " (none)"))
                self.report(value, indent + "  ")
            elif isinstance(value, list):
                self.line(f"{lead}{key}:" + ("" if value else " (none)"))
                for item in value:
                    if isinstance(item, dict):
                        self.report(item, indent + "    ", first=indent + "  - ")
                    else:
                        self.line(f"{indent}  - {item}")
            else:
                self.line(f"{lead}{key}: {value}")


def isatty(stream: Any) -> bool:
    method = getattr(stream, "isatty", None)
    return bool(method and method())
