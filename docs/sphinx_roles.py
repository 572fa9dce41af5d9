"""Griffe extension for the API reference: Sphinx roles in the docstrings become code links.

The docstrings in ``src/`` name other objects the Sphinx way
(``:class:`~mobilevos.memory.MemoryBank```, ``:func:`unroll_clip```, ``:meth:`title <path>```),
which Markdown would show as ``:class:`` followed by code. Before a docstring is parsed, this
extension turns each role into its text as code, linked through mkdocs-autorefs to the object it
names when griffe knows that object: the name as written, else relative to the enclosing class,
module and package, as Sphinx looks it up. The links are optional ones: a name that is not
rendered anywhere in the site stays plain code, so a role never fails ``mkdocs build --strict``.
A reST literal-block marker at the end of a line ("Usage::") loses one colon. Only the loaded
copy of each docstring changes, never a file in ``src/``.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Alias, AliasResolutionError, CyclicAliasError, Extension, GriffeLoader, Object

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const):`([^`]+)`")
TITLED = re.compile(r"^(.*?)\s*<([^<>]+)>$")
LITERAL_MARKER = re.compile(r"(\S)::[ \t]*$", re.MULTILINE)
PACKAGE = "mobilevos"


def _resolve(name: str, obj: Object, loader: GriffeLoader) -> str | None:
    """The path of the object ``name`` refers to from ``obj``'s docstring, or None."""
    scopes = [""]
    scope: Object | None = obj if obj.is_class or obj.is_module else obj.parent
    while scope is not None:
        scopes.append(scope.path + ".")
        scope = scope.parent
    for prefix in scopes:
        try:
            target = loader.modules_collection[prefix + name]
        except (KeyError, ValueError, AliasResolutionError, CyclicAliasError):
            continue
        if isinstance(target, Alias):
            return target.target_path
        return target.path
    return None


class SphinxRoles(Extension):
    """Rewrite Sphinx cross-reference roles as optional autorefs (see the module docstring)."""

    def on_package(self, *, pkg: Object, loader: GriffeLoader, **kwargs: Any) -> None:
        # griffe fires on_object for the members of a package, not for its own module.
        self.on_object(obj=pkg, loader=loader)

    def on_object(self, *, obj: Object, loader: GriffeLoader, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is None or not obj.path.startswith(PACKAGE):
            return

        def link(match: re.Match[str]) -> str:
            text = match.group(1).strip()
            titled = TITLED.match(text)
            if titled:
                title, name = titled.group(1), titled.group(2).lstrip("~")
            else:
                name = text.lstrip("~")
                title = name.rsplit(".", 1)[-1] if text.startswith("~") else name
            code = f"`{title}`"
            path = _resolve(name, obj, loader)
            if path is None:
                return code
            return f'<autoref identifier="{path}" optional>{code}</autoref>'

        value = ROLE.sub(link, docstring.value)
        docstring.value = LITERAL_MARKER.sub(r"\1:", value)
