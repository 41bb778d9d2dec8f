"""Self-contained HTML: inline CSS, PNG figures as base64 data URIs, every text escaped."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

# config.json keys shown first in the settings table, in this order; the rest follow.
SETTINGS_FIRST = ("arch", "task", "index", "image_size", "channels", "epochs", "batch_size",
                  "augment", "seed", "versions")


def esc(value: Any) -> str:
    """``value`` as HTML-escaped text (``&``, ``<``, ``>`` and quotes)."""
    return html.escape(str(value), quote=True)


def page(title: str, body: str) -> str:
    """A complete HTML document with the package's CSS inlined."""
    css = resources.files("kerascv_emotion.reporting").joinpath("report.css").read_text(encoding="utf-8")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{esc(title)}</title>\n<style>\n{css}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def figure(png: bytes, caption: str) -> str:
    """A ``<figure>`` with the PNG inlined as a data URI."""
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{esc(caption)}\">"
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def figures(items: Sequence[tuple[bytes, str]]) -> str:
    """Figures side by side where the page is wide enough."""
    return "<div class=\"figures\">" + "".join(figure(png, caption) for png, caption in items) + "</div>"


def table(headers: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]],
          best: set[tuple[int, int]] | None = None, average_rows: int = 0) -> str:
    """A table whose first column labels the rows; ``best`` holds ``(row, column)`` cell
    positions (0-based over the value cells) to highlight; the last ``average_rows`` rows
    are shaded as summary rows."""
    best = best or set()
    head = "".join(f"<th class=\"label\">{esc(headers[0])}</th>" if i == 0 else f"<th>{esc(h)}</th>"
                   for i, h in enumerate(headers))
    body = []
    for r, (label, cells) in enumerate(rows):
        shaded = " class=\"average\"" if r >= len(rows) - average_rows else ""
        tds = "".join(f"<td class=\"best\">{esc(cell)}</td>" if (r, c) in best else f"<td>{esc(cell)}</td>"
                      for c, cell in enumerate(cells))
        body.append(f"<tr{shaded}><td class=\"label\">{esc(label)}</td>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def format_setting(value: Any) -> str:
    """A config value as escaped HTML: mappings one ``key: value`` per line, lists of
    mappings one item per line, other values as compact JSON or text."""
    if isinstance(value, Mapping):
        return "<br>".join(f"{esc(key)}: {format_setting(item)}" for key, item in value.items())
    if isinstance(value, list) and any(isinstance(item, Mapping) for item in value):
        return "<br>".join(esc(json.dumps(item, separators=(", ", ": "))) for item in value)
    if isinstance(value, list):
        return esc(", ".join(str(item) for item in value))
    if value is None:
        return "none"
    return esc(value)


def ordered_settings(config: Mapping[str, Any]) -> list[str]:
    """``config`` keys: those of :data:`SETTINGS_FIRST` that exist, then the rest."""
    return [key for key in SETTINGS_FIRST if key in config] + [key for key in config if key not in SETTINGS_FIRST]


def settings_table(config: Mapping[str, Any]) -> str:
    """Every key of ``config.json`` as a two-column table, the main settings first."""
    rows = "".join(f"<tr><td class=\"label\">{esc(key)}</td><td class=\"settings\">{format_setting(config[key])}</td></tr>"
                   for key in ordered_settings(config))
    return f"<table><thead><tr><th class=\"label\">setting</th><th class=\"label\">value</th></tr></thead><tbody>{rows}</tbody></table>"


def notes(items: Sequence[str]) -> str:
    """Highlighted notes (e.g. why a number is n/a), or nothing."""
    return "".join(f"<p class=\"note\">{esc(item)}</p>" for item in items)
