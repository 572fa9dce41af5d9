"""MkDocs hook: put the repository files that the pages link to with ``../`` into the site.

The pages link to pictures and result files where they live in the repository, e.g.
``../results/default/demo-contact-sheet.jpg`` from ``docs/index.md``, so the same links work on
GitHub and in an editor, and nothing is copied into ``docs/``. MkDocs only knows the files under
``docs/`` and would report each such link as "not found". This hook reads every page's links and,
for each one that resolves to an existing file inside the repository but outside ``docs/``, adds
that file to the build under ``repo/<its repository path>``: pictures are copied, Markdown files
(``../results/prompts/box_iou.md``) become pages outside the navigation. MkDocs then resolves
and rewrites the links itself.

The site's front page is the README: ``docs/index.md`` only says so, and this hook replaces its
text with ``README.md``'s, each link rewritten for the page's place (``docs/models.md`` becomes
``models.md``, ``results/...`` becomes ``../results/...``), so the two never drift apart.

Nothing else changes: a link to a file that does not exist, that lies outside the repository,
or that points to another page or anchor is left to MkDocs's own validation, so
``mkdocs build --strict`` still fails on it. A linked file above ``MAX_BYTES`` is refused with a
warning (which fails ``--strict`` too) so that a large file is never copied by accident.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files, InclusionLevel

log = logging.getLogger("mkdocs.hooks.repo_files")

MAX_BYTES = 2_000_000
SITE_FOLDER = "repo"
FRONT_PAGE = "index.md"  # the README's place in the site

# Inline links and images, [text](target "title") and ![alt](target), and reference
# definitions, [name]: target.
_INLINE = re.compile(r"\]\(\s*<?([^)\s>]+)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_FENCE = re.compile(r"^\s*(```|~~~)")


def _link_targets(markdown: str) -> set[str]:
    """Link targets in ``markdown``, outside fenced code blocks."""
    text = "\n".join(line for line, prose in _prose_lines(markdown) if prose)
    return set(_INLINE.findall(text)) | set(_REFERENCE.findall(text))


def _prose_lines(markdown: str) -> list[tuple[str, bool]]:
    """Each line of ``markdown`` with whether it is prose (outside fenced code blocks)."""
    lines, in_fence = [], False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            lines.append((line, False))
        else:
            lines.append((line, not in_fence))
    return lines


def _from_docs(url: str) -> str:
    """A README link target as seen from ``docs/``: pages lose their ``docs/`` prefix, other
    repository paths gain ``../``; anchors, absolute paths and URLs are kept."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path or parts.path.startswith("/"):
        return url
    if parts.path.startswith("docs/"):
        inside = url[len("docs/") :]
        return inside if not inside.startswith("#") and inside else FRONT_PAGE + inside
    return "../" + url


def readme_for_docs(readme: str) -> str:
    """``readme`` with every link rewritten by :func:`_from_docs`."""
    out = []
    for line, prose in _prose_lines(readme):
        if prose:
            line = _INLINE.sub(
                lambda m: m.group(0).replace(m.group(1), _from_docs(m.group(1))), line
            )
            line = _REFERENCE.sub(
                lambda m: m.group(0).replace(m.group(1), _from_docs(m.group(1))), line
            )
        out.append(line)
    return "\n".join(out) + "\n"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    docs_dir = os.path.abspath(config.docs_dir)
    repo_root = os.path.dirname(os.path.abspath(config.config_file_path))
    front = files.get_file_from_path(FRONT_PAGE)
    if front is not None:
        front.content_string = readme_for_docs(Path(repo_root, "README.md").read_text())
    for page in list(files.documentation_pages()):
        for url in sorted(_link_targets(page.content_string)):
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or not parts.path or parts.path.startswith("/"):
                continue
            src_uri = posixpath.normpath(
                posixpath.join(posixpath.dirname(page.src_uri), unquote(parts.path))
            )
            if not src_uri.startswith("../") or src_uri in files.src_uris:
                continue
            path = os.path.normpath(os.path.join(docs_dir, src_uri))
            repo_path = os.path.relpath(path, repo_root)
            if repo_path.startswith("..") or not os.path.isfile(path):
                continue  # MkDocs reports the link as not found.
            if os.path.getsize(path) > MAX_BYTES:
                log.warning(
                    "Doc file '%s' links to '%s' (%d bytes), over the %d bytes this hook copies "
                    "into the site.",
                    page.src_uri,
                    repo_path,
                    os.path.getsize(path),
                    MAX_BYTES,
                )
                continue
            repo_uri = repo_path.replace(os.sep, "/")
            dest_uri = f"{SITE_FOLDER}/{repo_uri}"
            if dest_uri.endswith(".md"):
                stem = dest_uri[: -len(".md")]
                dest_uri = f"{stem}/index.html" if config.use_directory_urls else f"{stem}.html"
            files.append(
                File(
                    src_uri,
                    src_dir=docs_dir,
                    dest_dir=config.site_dir,
                    use_directory_urls=config.use_directory_urls,
                    dest_uri=dest_uri,
                    inclusion=InclusionLevel.NOT_IN_NAV,
                )
            )
    return files
