"""``show_source(obj)`` prints the code of a bertlab function, class or module; ``quote(name,
value)`` hands a computed number to the prose.

The chapters never copy package code into a cell; they show the real thing with this, so the text
a reader sees is the code that ran. In a notebook it is syntax-highlighted HTML (Pygments, which
Jupyter already ships); in a terminal it is plain text.
"""

from __future__ import annotations

import inspect
import sys


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


class Source:
    """Source code that displays highlighted in Jupyter and as plain text elsewhere."""

    def __init__(self, code: str, name: str, file: str | None, line: int | None):
        self.code, self.name, self.file, self.line = code, name, file, line

    def __str__(self) -> str:
        return self.code

    def __repr__(self) -> str:
        return self.code

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        formatter = HtmlFormatter(noclasses=True, style="default", nobackground=True)
        where = f"{self.file}, line {self.line}" if self.file else self.name
        body = highlight(self.code, PythonLexer(), formatter)
        return (
            '<div class="bertlab-source">'
            f'<div style="font-size:0.8em;color:#666">{where}</div>{body}</div>'
        )


def get_source(obj) -> Source:
    """The source of ``obj`` (function, method, class or module) as a :class:`Source`.

    A decorated function (``@torch.no_grad()``, ``functools.wraps``) is shown with the file and
    line of its own definition, not of the decorator's wrapper."""
    obj = inspect.unwrap(obj)
    try:
        code = inspect.getsource(obj)
        lines, line = inspect.getsourcelines(obj)
        file = inspect.getsourcefile(obj)
    except (TypeError, OSError) as e:
        raise TypeError(
            f"cannot show the source of {obj!r}: {e}. Pass a function, class, method or module "
            f"written in Python (not a builtin or an instance)."
        ) from e
    name = getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj)))
    if file and "bertlab" in file:
        file = "bertlab/" + file.replace("\\", "/").rsplit("/bertlab/", 1)[-1]
    return Source(code, name, file, line if line else 1)


def show_source(obj) -> Source | None:
    """Show the source of ``obj``: highlighted HTML in a notebook, plain text in a terminal."""
    src = get_source(obj)
    if _in_notebook():
        return src  # Jupyter renders _repr_html_; the notebook's plain-text output is the code
    print(src.code)
    return None


def quote(name: str, value, display: bool = False):
    """Store ``value`` under ``name`` so the book's text can quote it: ``{glue:text}`name:.1f```.

    Wraps myst-nb's ``glue`` so the numbers in the prose come from the code. Where myst-nb is
    not installed (Colab, say) the value is only returned, since no book is being built there.
    """
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy/torch scalars -> Python numbers, which the text can format
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return value
    _glue(name, value, display=display)
    return value
