"""Spreadsheet-safe cells: text that Excel/LibreOffice would run as a formula is neutralised (OWASP CSV injection).

OWASP's rule: a cell that starts with `=`, `+`, `-`, `@`, TAB or CR is prefixed with a single quote, so that a
spreadsheet shows it as text instead of evaluating it (`=cmd|' /C calc'!A0`, `=HYPERLINK(...)`). Only text is
touched: numbers of numeric columns stay numbers (a negative amount is still a number). XLSX cells holding text
are written with the string type, never as formulas.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["FORMULA_CHARS", "safe_text", "safe_list_cell", "xlsx_bytes"]

FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: Any) -> Any:
    """`value` unchanged unless it is text a spreadsheet would read as a formula; then it gets a leading `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_CHARS):
        return "'" + value
    return value


def safe_list_cell(items: Iterable[Any], sep: str = ";") -> str:
    """Items joined by `sep`, each neutralised: with `;` as the list separator of the reader's locale every item
    becomes a cell of its own, so an item must not start a formula either."""
    return sep.join(safe_text(str(item)) for item in items)


def xlsx_bytes(sheet: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A one-sheet workbook; text cells are typed as strings (a leading `=` is shown, never evaluated)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.append(list(columns))
    for row in rows:
        cells = []
        for value in row:
            if isinstance(value, str):
                cell = WriteOnlyCell(ws, value)
                cell.data_type = "s"  # openpyxl binds text starting with `=` as a formula; force a string
                cells.append(cell)
            else:
                cells.append(value)
        ws.append(cells)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
