"""A local Sphinx extension: make the built book render with no network.

``tools/vendor_js.sh`` (run by the Makefile before each build) puts require.js, the ipywidgets HTML
manager, d3, jquery and MathJax 3 into ``assets/vendor/``; ``_config.yml`` serves ``assets/`` as
static files and points ``mathjax_path`` and ``nb_ipywidgets_js`` at them. Two things are left to
this extension:

- notebook outputs that carry their own CDN URLs (bertviz's attention views write a require.js
  ``<script>`` tag and d3/jquery paths into their HTML) are rewritten, page by page, to the
  vendored copies;
- when the vendored files are missing (no npm), the CDN defaults are put back so the book still
  builds, and a warning says that it will need the network.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

VENDOR = "vendor"  # inside html_static_path's "assets" folder -> _static/vendor/ in the output

# CDN URL (regex) -> file under _static/vendor (without ".js" where require.js paths omit it).
REWRITES = [
    (r"https://cdnjs\.cloudflare\.com/ajax/libs/require\.js/[\d.]+/require(\.min)?\.js", "require.js"),
    (r"https://cdnjs\.cloudflare\.com/ajax/libs/d3/[\d.]+/d3(\.min)?(?=['\"])", "d3.min"),
    (r"https://cdnjs\.cloudflare\.com/ajax/libs/jquery/[\d.]+/jquery(\.min)?(?=['\"])", "jquery.min"),
    (r"https://cdnjs\.cloudflare\.com/ajax/libs/d3/[\d.]+/d3(\.min)?\.js", "d3.min.js"),
    (r"https://cdnjs\.cloudflare\.com/ajax/libs/jquery/[\d.]+/jquery(\.min)?\.js", "jquery.min.js"),
]


def _dedupe_scripts(context) -> None:
    """sphinx-thebe registers its inline ``const THEBE_JS_URL = ...`` twice under Jupyter Book,
    which the browser reports as a redeclaration error; keep the first copy of each script."""
    seen, kept = set(), []
    for js in context.get("script_files", []):
        key = (str(getattr(js, "filename", js) or ""), getattr(js, "attributes", {}).get("body"))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"] = kept


def _vendored(app) -> bool:
    return (Path(app.confdir) / "assets" / VENDOR / "require.js").is_file()


# The widget manager's modules find their icon fonts next to the URL require.js gives their module
# names ("@jupyter-widgets/controls", "@jupyter-widgets/html-manager/dist/libembed-amd"), by
# default relative to the page. A global `require` object set before require.js loads is read as
# its configuration: map those names to the vendored folder, relative to the book's root.
REQUIRE_CONFIG_JS = (
    "(function () { var hm = new URL((document.documentElement.dataset.content_root || './') + "
    "'_static/vendor/html-manager', document.baseURI).href; "
    "window.require = {paths: {'@jupyter-widgets': hm, '@jupyter-widgets/html-manager/dist': hm}};"
    " })();"
)


# The widget manager typesets widget labels with MathJax 2's API (MathJax.Hub.Queue); the book
# loads MathJax 3, which has none, so pages with both formulas and widgets threw console errors.
# Give whatever object is (or becomes) window.MathJax a Hub whose Queue re-typesets with v3.
MATHJAX2_SHIM_JS = (
    "(function () { var mj = window.MathJax; function shim(m) { if (m && typeof m === 'object' "
    "&& !m.Hub) { m.Hub = {Queue: function () { if (m.typesetPromise) { m.typesetPromise(); } "
    "}}; } return m; } Object.defineProperty(window, 'MathJax', {configurable: true, "
    "get: function () { return mj; }, set: function (v) { mj = shim(v); }}); shim(mj); })();"
)


def builder_inited(app):
    app.add_js_file(None, body=MATHJAX2_SHIM_JS, priority=1)
    if _vendored(app):
        app.add_js_file(None, body=REQUIRE_CONFIG_JS, priority=400)


def config_inited(app, config):
    # pydata-sphinx-theme logs a console error on a first visit when no colour mode is stored.
    config.html_context.setdefault("default_mode", "light")
    if _vendored(app):
        return
    from myst_nb.core.config import ipywidgets_js_factory

    print(
        "WARNING: assets/vendor/ is missing (npm was not available to tools/vendor_js.sh). The "
        "book is built with CDN URLs for MathJax, require.js, the widget manager and d3: it "
        "needs the network to render formulas, widgets and attention views.",
        file=sys.stderr,
    )
    config.mathjax_path = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"
    config.nb_ipywidgets_js = ipywidgets_js_factory()


def html_page_context(app, pagename, templatename, context, doctree):
    _dedupe_scripts(context)
    body = context.get("body")
    if not body or not _vendored(app):
        return
    for pattern, target in REWRITES:
        local = context["pathto"](f"_static/{VENDOR}/{target}", 1)
        body = re.sub(pattern, local, body)
    context["body"] = body


def setup(app):
    app.connect("config-inited", config_inited)
    app.connect("builder-inited", builder_inited)
    app.connect("html-page-context", html_page_context, priority=900)  # after the others
    return {"parallel_read_safe": True, "parallel_write_safe": True}
