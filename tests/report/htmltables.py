"""Read a report's sections, tables, notes and images with the standard library's html.parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Table:
    id: str
    section: str
    caption: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)

    def col(self, name: str) -> list[str]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def records(self) -> list[dict[str, str]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


class ReportParser(HTMLParser):
    """Collects tables (by id), section presence and notes, images, and the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, Table] = {}
        self.sections: dict[str, str] = {}      # id -> data-present
        self.notes: dict[str, str] = {}         # section id -> absent note
        self.images: list[dict[str, str]] = []
        self.items: dict[str, dict[str, str]] = {}  # text-block id -> dt -> dd
        self.text: list[str] = []
        self._section = ""
        self._table: Table | None = None
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._in_head = False
        self._in_caption = False
        self._note = False
        self._block = ""
        self._dt: list[str] | None = None
        self._dd: list[str] | None = None
        self._last_dt = ""
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("style", "script"):
            self._skip += 1
        if tag == "section":
            self._section = a.get("id", "")
            self.sections[self._section] = a.get("data-present", "")
        elif tag == "table":
            self._table = Table(a.get("id", ""), self._section)
        elif tag == "thead":
            self._in_head = True
        elif tag == "caption":
            self._in_caption = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append({"section": self._section, **{k: v or "" for k, v in attrs}})
        elif tag == "p" and "absent-note" in (a.get("class") or ""):
            self._note = True
            self.notes[self._section] = ""
        elif tag == "div" and a.get("id"):
            self._block = a["id"]
            self.items[self._block] = {}
        elif tag == "dt":
            self._dt = []
        elif tag == "dd":
            self._dd = []

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            if self._in_head:
                self._table.columns = self._row
            else:
                self._table.rows.append(self._row)
            self._row = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "caption":
            self._in_caption = False
        elif tag == "table" and self._table is not None:
            self.tables[self._table.id] = self._table
            self._table = None
        elif tag == "p":
            self._note = False
        elif tag == "dt" and self._dt is not None:
            self._last_dt = "".join(self._dt).strip()
            self._dt = None
        elif tag == "dd" and self._dd is not None:
            if self._block:
                self.items[self._block][self._last_dt] = "".join(self._dd).strip()
            self._dd = None
        elif tag == "div":
            self._block = ""

    def handle_data(self, data):
        if self._skip:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._in_caption and self._table is not None:
            self._table.caption += data
        if self._note:
            self.notes[self._section] += data
        if self._dt is not None:
            self._dt.append(data)
        if self._dd is not None:
            self._dd.append(data)


def parse_report(html: str) -> ReportParser:
    p = ReportParser()
    p.feed(html)
    p.close()
    return p


def num(cell: str) -> float:
    """A formatted number back to float (the en dash is NaN)."""
    return float("nan") if cell.strip() == "\u2013" else float(cell)
