"""The web console's weight as a browser first loads it: the JavaScript that index.html pulls in
(its module script and the chunks it preloads), gzipped as a server would send it, beside the
whole build's JavaScript (every screen's chunk: loaded only when that screen is opened)."""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

DIST = Path(__file__).resolve().parents[1] / "services" / "gateway" / "console" / "dist"
# what nginx and most servers use by default (gzip_comp_level 6 is common; 6 is zlib's default)
LEVEL = 6


class _Entry(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("type") == "module" and a.get("src"):
            self.scripts.append(a["src"] or "")
        elif tag == "link" and a.get("rel") == "modulepreload" and a.get("href"):
            self.scripts.append(a["href"] or "")


@dataclass(frozen=True)
class ConsoleSize:
    first_load_gzip_bytes: int
    whole_build_gzip_bytes: int
    first_load_files: tuple[str, ...]


def gzip_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=LEVEL))


def console_size(dist: Path = DIST) -> ConsoleSize:
    index = dist / "index.html"
    if not index.is_file():
        raise FileNotFoundError(f"{index} is missing: `make up` builds the console")
    entry = _Entry()
    entry.feed(index.read_text(encoding="utf-8"))
    first = tuple(sorted({s.lstrip("/") for s in entry.scripts}))
    return ConsoleSize(first_load_gzip_bytes=sum(gzip_size(dist / f) for f in first),
                       whole_build_gzip_bytes=sum(gzip_size(p) for p in (dist / "assets").glob("*.js")),
                       first_load_files=first)


if __name__ == "__main__":
    size = console_size()
    print(f"first load {size.first_load_gzip_bytes:,} bytes of JavaScript gzipped ({', '.join(size.first_load_files)}); "
          f"the whole build {size.whole_build_gzip_bytes:,}")
