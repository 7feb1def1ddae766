"""documents_generate: .docx, .xlsx and .pdf from a template and data, kept in the organization's files.

A template is a title, paragraphs and an optional table whose text holds
``{{ placeholders }}`` (dotted names reach into nested data). Placeholders
are plain substitution, never code: a missing one is an error naming it.
Templates are built in (``offer_letter``, ``letter``, ``table``), given
inline, or, for .docx, an organization's own .docx file whose paragraphs and
table cells hold the placeholders.
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings

from tools.builtin.files import download_link
from tools.context import ToolContext
from tools.errors import ToolFailed
from tools.registry import Tool
from tools.types import SideEffect

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")
DEFAULT_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
DEFAULT_BOLD_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
MAX_ROWS = 5000

TEMPLATES: dict[str, dict[str, Any]] = {
    "offer_letter": {
        "title": "Offer of employment",
        "paragraphs": [
            "{{ company_name }}",
            "{{ date }}",
            "Dear {{ candidate_name }},",
            "We are delighted to offer you the position of {{ position }} at {{ company_name }}, "
            "reporting to {{ manager_name }}. Your first day will be {{ start_date }}.",
            "Your starting salary will be {{ salary }} per year, paid monthly, with the benefits described in "
            "the employee handbook.",
            "Please confirm your acceptance by signing and returning this letter.",
            "We look forward to welcoming you to the team.",
            "Sincerely,",
            "{{ signer_name }}",
        ],
    },
    "letter": {
        "title": "{{ subject }}",
        "paragraphs": ["{{ date }}", "Dear {{ recipient_name }},", "{{ body }}", "Sincerely,", "{{ signer_name }}"],
    },
    "table": {"title": "{{ title }}", "paragraphs": [], "table": {"columns": "{{ columns }}", "rows": "{{ rows }}"}},
}

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "format": {"type": "string", "enum": ["docx", "xlsx", "pdf"]},
        "template": {"type": "string", "enum": sorted(TEMPLATES)},
        "template_path": {"type": "string", "maxLength": 1024,
                          "description": "An organization .docx whose text holds {{ placeholders }}."},
        "content": {
            "type": "object",
            "properties": {
                "title": {"type": "string", "maxLength": 300},
                "paragraphs": {"type": "array", "items": {"type": "string", "maxLength": 20000}, "maxItems": 500},
                "table": {
                    "type": "object",
                    "properties": {
                        "columns": {"type": "array", "items": {"type": "string", "maxLength": 200}, "maxItems": 50},
                        "rows": {"type": "array", "maxItems": MAX_ROWS,
                                 "items": {"type": "array", "maxItems": 50}},
                    },
                    "required": ["columns", "rows"],
                },
            },
            "additionalProperties": False,
        },
        "data": {"type": "object", "description": "Values for the {{ placeholders }}."},
        "filename": {"type": "string", "minLength": 1, "maxLength": 120, "pattern": r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$"},
        "folder": {"type": "string", "maxLength": 300, "default": "documents"},
    },
    "required": ["format", "filename"],
    "oneOf": [{"required": ["template"]}, {"required": ["template_path"]}, {"required": ["content"]}],
    "additionalProperties": False,
}


# --- placeholders -----------------------------------------------------------------------------


def _lookup(data: dict[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value


def placeholders_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(placeholders_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(placeholders_in(v) for v in value)) if value else set()
    return set()


def fill(text: str, data: dict[str, Any]) -> str:
    return PLACEHOLDER.sub(lambda m: str(_lookup(data, m.group(1))), text)


def _check_missing(template: Any, data: dict[str, Any]) -> None:
    missing = []
    for name in sorted(placeholders_in(template)):
        try:
            _lookup(data, name)
        except KeyError:
            missing.append(name)
    if missing:
        raise ToolFailed(f"the data lacks: {', '.join(missing)}", code="missing_data")


def render_content(template: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The template with every placeholder filled (a whole-value ``{{ rows }}`` keeps its list)."""
    _check_missing(template, data)

    def whole(value: Any) -> Any:
        if isinstance(value, str):
            match = PLACEHOLDER.fullmatch(value.strip())
            return _lookup(data, match.group(1)) if match else fill(value, data)
        return value

    table = template.get("table")
    rendered: dict[str, Any] = {
        "title": fill(template.get("title", ""), data),
        "paragraphs": [fill(p, data) for p in template.get("paragraphs", [])],
    }
    if table:
        columns = whole(table.get("columns", []))
        rows = whole(table.get("rows", []))
        if not isinstance(columns, list) or not isinstance(rows, list) or len(rows) > MAX_ROWS:
            raise ToolFailed("a table needs a list of columns and a list of rows", code="invalid_arguments")
        rendered["table"] = {
            "columns": [fill(str(c), data) for c in columns],
            "rows": [[fill(c, data) if isinstance(c, str) else c for c in row] if isinstance(row, list) else [row]
                     for row in rows],
        }
    return rendered


# --- writers -----------------------------------------------------------------------------------


def write_docx(content: dict[str, Any]) -> bytes:
    from docx import Document

    document = Document()
    if content["title"]:
        document.add_heading(content["title"], level=1)
    for paragraph in content["paragraphs"]:
        document.add_paragraph(paragraph)
    table = content.get("table")
    if table:
        grid = document.add_table(rows=1, cols=max(1, len(table["columns"])))
        grid.style = "Table Grid"
        for cell, column in zip(grid.rows[0].cells, table["columns"], strict=False):
            cell.text = str(column)
        for row in table["rows"]:
            cells = grid.add_row().cells
            for cell, value in zip(cells, row, strict=False):
                cell.text = "" if value is None else str(value)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def fill_docx_template(template: bytes, data: dict[str, Any]) -> bytes:
    """Fill placeholders in an organization's .docx (paragraphs and table cells, even split across runs)."""
    from docx import Document

    try:
        document = Document(io.BytesIO(template))
    except Exception as exc:
        raise ToolFailed("the template is not a readable .docx file", code="invalid_template") from exc
    paragraphs = list(document.paragraphs)
    for table in document.tables:
        for row in table.rows:
            for cell in row.cells:
                paragraphs.extend(cell.paragraphs)
    _check_missing([p.text for p in paragraphs], data)
    for paragraph in paragraphs:
        text = paragraph.text
        if not PLACEHOLDER.search(text):
            continue
        runs = paragraph.runs
        if not runs:
            continue
        runs[0].text = fill(text, data)  # keeps the first run's formatting
        for run in runs[1:]:
            run.text = ""
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def write_xlsx(content: dict[str, Any]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = (re.sub(r"[\[\]:*?/\\]", " ", content["title"]) or "Sheet")[:31]
    row_number = 1
    if content["title"]:
        sheet.cell(row=1, column=1, value=content["title"]).font = Font(bold=True, size=14)
        row_number = 3
    for paragraph in content["paragraphs"]:
        sheet.cell(row=row_number, column=1, value=_cell(paragraph))
        row_number += 1
    table = content.get("table")
    if table:
        if content["paragraphs"]:
            row_number += 1
        for col, column in enumerate(table["columns"], start=1):
            sheet.cell(row=row_number, column=col, value=_cell(column)).font = Font(bold=True)
        for row in table["rows"]:
            row_number += 1
            for col, value in enumerate(row, start=1):
                sheet.cell(row=row_number, column=col, value=_cell(value))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    """A cell value; text that a spreadsheet would run as a formula is kept as text (CSV/formula injection)."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def write_pdf(content: dict[str, Any]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    regular = getattr(settings, "TOOLS_PDF_FONT", DEFAULT_FONT)
    bold = getattr(settings, "TOOLS_PDF_BOLD_FONT", DEFAULT_BOLD_FONT)
    if Path(regular).exists() and Path(bold).exists():
        pdf.add_font("Body", "", regular)
        pdf.add_font("Body", "B", bold)
        family, clean = "Body", (lambda s: s)
    else:  # core fonts only know Latin-1
        family, clean = "Helvetica", (lambda s: s.encode("latin-1", "replace").decode("latin-1"))
    if content["title"]:
        pdf.set_font(family, "B", 16)
        pdf.multi_cell(0, 10, clean(content["title"]), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
    pdf.set_font(family, "", 11)
    for paragraph in content["paragraphs"]:
        pdf.multi_cell(0, 6, clean(paragraph), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    table = content.get("table")
    if table and table["columns"]:
        pdf.ln(2)
        with pdf.table() as grid:
            header = grid.row()
            for column in table["columns"]:
                header.cell(clean(str(column)))
            for row in table["rows"]:
                line = grid.row()
                for index in range(len(table["columns"])):
                    value = row[index] if index < len(row) else ""
                    line.cell(clean("" if value is None else str(value)))
    return bytes(pdf.output())


# --- the tool ----------------------------------------------------------------------------------


def _unique_path(ctx: ToolContext, folder: str, filename: str, extension: str) -> str:
    storage = ctx.storage()
    stem = filename.rsplit(".", 1)[0] if filename.lower().endswith(f".{extension}") else filename
    base = f"{folder.strip('/')}/{stem}" if folder.strip("/") else stem
    candidate = f"{base}.{extension}"
    counter = 2
    while storage.exists(candidate):
        candidate = f"{base}-{counter}.{extension}"
        counter += 1
    return candidate


def documents_generate(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    data = {"date": date.today().isoformat(), "company_name": ctx.organization.name, **(args.get("data") or {})}
    fmt = args["format"]
    if "template_path" in args:
        if fmt != "docx":
            raise ToolFailed("an organization template is a .docx and makes a .docx", code="invalid_arguments")
        payload = fill_docx_template(ctx.storage().read(args["template_path"]), data)
    else:
        template = TEMPLATES[args["template"]] if "template" in args else args["content"]
        content = render_content(template, data)
        payload = {"docx": write_docx, "xlsx": write_xlsx, "pdf": write_pdf}[fmt](content)
    path = _unique_path(ctx, args.get("folder", "documents"), args["filename"], fmt)
    entry = ctx.storage().write(path, payload, overwrite=False)
    return {
        "path": entry.path,
        "format": fmt,
        "size": entry.size,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "download_url": download_link(ctx, entry.path),
        "created": True,
    }


def documents_remove(ctx: ToolContext, args: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    storage = ctx.storage()
    if storage.exists(result["path"]):
        storage.delete(result["path"])
    return {"removed": result["path"]}


DOCUMENTS_GENERATE = Tool(
    name="documents_generate",
    title="Generate a document",
    description=(
        "Create a .docx, .xlsx or .pdf from a template (offer_letter, letter, table, an organization .docx, "
        "or inline content) filled with data; it is saved in the organization's files with a download link."
    ),
    parameters=PARAMETERS,
    handler=documents_generate,
    compensation=documents_remove,
    side_effect=SideEffect.WRITE,
    timeout=60,
)
