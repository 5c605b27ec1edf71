"""Make a published asv dashboard work offline.

asv's ``index.html`` loads jQuery, flot, stupidtable, md5 and Bootstrap from CDNs;
without internet it shows "One or more external (JavaScript) dependencies of airspeed
velocity failed to load". :func:`vendor_dashboard` fetches the same libraries from
the npm registry with ``npm pack`` (cached, so later runs need no network), copies
the files under ``<html_dir>/vendor/`` and points the pages at them, dropping the
``integrity=`` hashes (npm's files are not byte-identical to the CDN's).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class VendoredFile:
    """The npm package file that replaces one CDN URL (matched by the URL's file name)."""

    package: str  # npm spec, name@version
    path: str  # inside the package
    extra: tuple[str, ...] = ()  # folders the file refers to (copied beside it)

    @property
    def name(self) -> str:
        return self.package.rsplit("@", 1)[0]


#: CDN file name in asv 0.6's index.html -> its npm replacement.
VENDORED = {
    "jquery-3.3.1.min.js": VendoredFile("jquery@3.3.1", "dist/jquery.min.js"),
    # npm's flot 0.8.3 ships the unminified sources only.
    "jquery.flot.min.js": VendoredFile("flot@0.8.3", "jquery.flot.js"),
    "jquery.flot.time.min.js": VendoredFile("flot@0.8.3", "jquery.flot.time.js"),
    "jquery.flot.selection.min.js": VendoredFile("flot@0.8.3", "jquery.flot.selection.js"),
    "jquery.flot.categories.min.js": VendoredFile("flot@0.8.3", "jquery.flot.categories.js"),
    "jquery.flot.orderBars.js": VendoredFile("flot-orderbars@1.0.0", "js/jquery.flot.orderBars.js"),
    # The CDN serves 1.0.1, which npm does not have; 1.1.3 has the same API.
    "stupidtable.min.js": VendoredFile("stupid-table-plugin@1.1.3", "stupidtable.min.js"),
    "md5.min.js": VendoredFile("blueimp-md5@2.19.0", "js/md5.min.js"),
    "bootstrap.min.js": VendoredFile("bootstrap@3.1.1", "dist/js/bootstrap.min.js"),
    "bootstrap.min.css": VendoredFile(
        "bootstrap@3.1.1", "dist/css/bootstrap.min.css", extra=("dist/fonts",)
    ),
}

_TAG = re.compile(r"<(script|link)\b[^>]*>", re.IGNORECASE)
_URL = re.compile(r"""\b(src|href)=(["'])(https?://[^"']+)\2""", re.IGNORECASE)
_CDN_ONLY_ATTRIBUTES = re.compile(
    r"""\s+(integrity|crossorigin|referrerpolicy)=(["'])[^"']*\2""", re.IGNORECASE
)


class VendoringError(RuntimeError):
    """The dashboard could not be made offline-capable (the message says why)."""


def vendor_dashboard(html_dir: Path, cache_dir: Path) -> list[str]:
    """Vendor every known CDN dependency of the pages in ``html_dir``.

    Returns the CDN URLs left in the pages (unknown to :data:`VENDORED`); raises
    :class:`VendoringError` when npm is missing or a package cannot be fetched.
    """
    html_dir = Path(html_dir)
    pages = sorted(html_dir.glob("*.html"))
    if not pages:
        raise VendoringError(f"no published pages in {html_dir} (run asv publish first)")
    urls = {url for page in pages for url in cdn_urls(page.read_text(encoding="utf-8"))}
    local = {}
    for url in sorted(urls):
        wanted = VENDORED.get(url.rsplit("/", 1)[-1])
        if wanted is not None:
            local[url] = install_file(wanted, html_dir / "vendor", cache_dir)
    for page in pages:
        page.write_text(rewrite_page(page.read_text(encoding="utf-8"), local), encoding="utf-8")
    return sorted(urls - set(local))


def cdn_urls(html: str) -> list[str]:
    """The http(s) URLs that ``<script src>`` and ``<link href>`` tags load."""
    found = []
    for tag in _TAG.finditer(html):
        if _is_stylesheet_or_script(tag.group(0)):
            found += [m.group(3) for m in _URL.finditer(tag.group(0))]
    return found


def _is_stylesheet_or_script(tag: str) -> bool:
    return tag[1:7].lower() == "script" or "stylesheet" in tag.lower()


def rewrite_page(html: str, local: dict[str, str]) -> str:
    """Point the tags that load a URL of ``local`` at the local path, without integrity."""

    def rewrite(tag_match: re.Match) -> str:
        tag = tag_match.group(0)
        urls = [m.group(3) for m in _URL.finditer(tag)]
        if not any(url in local for url in urls):
            return tag
        for url in urls:
            if url in local:
                tag = tag.replace(url, local[url])
        return _CDN_ONLY_ATTRIBUTES.sub("", tag)

    return _TAG.sub(rewrite, html)


def install_file(wanted: VendoredFile, vendor_dir: Path, cache_dir: Path) -> str:
    """Copy ``wanted`` (and its extra folders) under ``vendor_dir``; return its URL path."""
    package_dir = fetch_package(wanted.package, cache_dir)
    for relative in (wanted.path, *wanted.extra):
        source = package_dir / relative
        if not source.exists():
            raise VendoringError(f"{wanted.package} has no {relative}")
        target = vendor_dir / wanted.name / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    return f"vendor/{wanted.name}/{wanted.path}"


def fetch_package(spec: str, cache_dir: Path) -> Path:
    """The unpacked npm package ``spec`` (``name@version``), from the cache or ``npm pack``."""
    cache_dir = Path(cache_dir)
    unpacked = cache_dir / spec.replace("/", "_")
    if (unpacked / "package" / "package.json").exists():
        return unpacked / "package"
    npm = shutil.which("npm")
    if npm is None:
        raise VendoringError(
            "npm was not found on PATH: it is needed once to fetch the dashboard's JavaScript "
            "from the npm registry (install Node.js, e.g. `apt-get install npm`)"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "pack", spec, "--json", "--pack-destination", str(cache_dir)],
        capture_output=True,
        text=True,
        cwd=cache_dir,
        check=False,
    )
    if done.returncode != 0:
        raise VendoringError(f"`npm pack {spec}` failed:\n{done.stderr.strip()[-2000:]}")
    try:
        tarball = cache_dir / json.loads(done.stdout)[0]["filename"]
    except (ValueError, LookupError) as exc:
        raise VendoringError(f"`npm pack {spec}` printed no file name ({exc})") from None
    with tarfile.open(tarball) as archive:
        archive.extractall(unpacked, filter="data")
    tarball.unlink()
    return unpacked / "package"
