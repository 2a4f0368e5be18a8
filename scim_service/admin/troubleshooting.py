"""The troubleshooting guide on the admin page, read from ``docs/troubleshooting.md`` itself.

One source: the page renders the same file the docs hold (``troubleshooting.md`` in this package is a
link to it, so it ships as package data). Each row of the guide's table becomes an entry with an
anchor; :meth:`Guide.entry_for` finds the entry of a failed request from its status and scimType, so
every failed line of the provisioning log links to the row that explains it.

The renderer knows only the Markdown the guide uses: headings, paragraphs, lists, fenced code, tables,
and inline code, bold, italics and links. Everything is HTML-escaped before any markup is added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from markupsafe import Markup, escape

from scim_service.errors import SCIM_TYPES


@dataclass(frozen=True)
class Entry:
    """One row of the guide: what the IdP shows, the cause, the fix, and its anchor on the page."""

    anchor: str
    label: str
    statuses: frozenset[int]
    scim_types: frozenset[str]
    cause: str
    fix: str

    @property
    def general(self) -> bool:
        """Whether the label names only statuses and scimTypes ("400 invalidPath / noTarget")."""
        rest = re.sub(r"\b[1-5]\d\d\b", "", self.label)
        for name in self.scim_types:
            rest = rest.replace(name, "")
        return not rest.strip(" /,")


def slug(text: str, limit: int = 48) -> str:
    """A stable, URL-safe anchor for a label (GitHub-like, cut at ``limit`` characters)."""
    plain = re.sub(r"[*`\[\]()]", "", text).lower()
    words = re.sub(r"[^a-z0-9]+", "-", plain).strip("-")
    return words[:limit].rstrip("-") or "entry"


def _inline(text: str) -> Markup:
    """Escape ``text``, then turn its inline Markdown into HTML."""
    out = str(escape(text))
    codes: list[str] = []

    def keep_code(match: re.Match[str]) -> str:
        codes.append(f"<code>{match.group(1)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    out = re.sub(r"`([^`]+)`", keep_code, out)  # code spans first: no markup inside them
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", out)

    def link(match: re.Match[str]) -> str:
        label, target = match.group(1), match.group(2)
        if target.startswith(("http://", "https://")):
            return f'<a href="{target}" rel="noreferrer">{label}</a>'
        if target.startswith("#"):
            return f'<a href="{target}">{label}</a>'
        # Another page of the docs: name it (the admin page serves only this one).
        return f'{label} <span class="docref">(docs/{target.split("#")[0]})</span>'

    out = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", link, out)
    out = re.sub(r"\x00(\d+)\x00", lambda m: codes[int(m.group(1))], out)
    return Markup(out)  # built from escaped text only


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


@dataclass(frozen=True)
class Guide:
    """The parsed guide: its entries (table rows) and the whole page as HTML."""

    entries: tuple[Entry, ...]
    html: Markup

    def entry_for(self, status: int, scim_type: str | None) -> Entry | None:
        """The row that explains a response of ``status`` with ``scim_type``.

        A row naming both, preferring one whose label is nothing but statuses and scimTypes (the
        general row over a special case that mentions the type); else the first row naming the status
        and no scimType; None when no row fits.
        """
        rows = [e for e in self.entries if status in e.statuses]
        if scim_type:
            named = [e for e in rows if scim_type in e.scim_types]
            if named:
                return sorted(named, key=lambda e: not e.general)[0]
        return next((e for e in rows if not e.scim_types), None)


def parse(markdown: str) -> Guide:
    """Parse the guide's Markdown into entries and HTML (see the module docstring for what it knows)."""
    entries: list[Entry] = []
    html: list[str] = []
    lines = markdown.splitlines()
    paragraph: list[str] = []
    in_list = False
    index = 0

    def flush() -> None:
        nonlocal in_list
        if paragraph:
            html.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()
        if in_list:
            html.append("</ul>")
            in_list = False

    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            code: list[str] = []
            index += 1
            while index < len(lines) and not lines[index].strip().startswith("```"):
                code.append(lines[index])
                index += 1
            html.append(f"<pre><code>{escape(chr(10).join(code))}</code></pre>")
        elif stripped.startswith("#"):
            flush()
            level = min(len(stripped) - len(stripped.lstrip("#")), 4)
            title = stripped.lstrip("#").strip()
            html.append(f'<h{level + 1} id="{slug(title)}">{_inline(title)}</h{level + 1}>')
        elif stripped.startswith("|"):
            flush()
            header = _cells(stripped)
            index += 2  # the header row and the |---| separator
            html.append('<table class="guide"><thead><tr>')
            html.extend(f"<th>{_inline(h)}</th>" for h in header)
            html.append("</tr></thead><tbody>")
            while index < len(lines) and lines[index].strip().startswith("|"):
                cells = [*_cells(lines[index]), "", ""]
                label, cause, fix = cells[0], cells[1], cells[2]
                entry = Entry(
                    anchor=slug(label),
                    label=re.sub(r"[*`]", "", label),
                    statuses=frozenset(int(n) for n in re.findall(r"\b([1-5]\d\d)\b", label)),
                    scim_types=frozenset(w for w in re.findall(r"[A-Za-z]+", label) if w in SCIM_TYPES),
                    cause=cause,
                    fix=fix,
                )
                entries.append(entry)
                html.append(
                    f'<tr id="{entry.anchor}"><td>{_inline(label)}</td><td>{_inline(cause)}</td>'
                    f"<td>{_inline(fix)}</td></tr>"
                )
                index += 1
            html.append("</tbody></table>")
            continue
        elif stripped.startswith(("- ", "* ")):
            if paragraph:
                flush()
            if not in_list:
                html.append("<ul>")
                in_list = True
            html.append(f"<li>{_inline(stripped[2:])}</li>")
        elif not stripped:
            flush()
        else:
            paragraph.append(stripped)
        index += 1
    flush()
    return Guide(tuple(entries), Markup("\n".join(html)))  # every piece was escaped above


@lru_cache(maxsize=1)
def guide() -> Guide:
    """The guide shipped with the package (parsed once per process)."""
    text = resources.files("scim_service.admin").joinpath("troubleshooting.md").read_text(encoding="utf-8")
    return parse(text)
