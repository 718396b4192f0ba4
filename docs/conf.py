"""Sphinx configuration of the vbounds documentation (``make docs``).

The tutorials and the bound zoo are MyST markdown notebooks, executed by myst-nb on every
build (``nb_execution_mode = "force"``); a cell that raises fails the build, and
``make docs`` turns every Sphinx warning into an error.
"""

import os
import re
import shutil

import vbounds

project = "vbounds"
author = "the vbounds authors"
copyright = "the vbounds authors"
version = release = vbounds.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# The Results and Benchmarks pages include the committed write-ups, so the site shows the
# same numbers as the repository: one generated page per experiments/results/<name>/README.md
# (and the digits write-up, experiments/RESULTS.md). Generated anew on every build.
_DOCS = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_DOCS)


def _write_results_pages():
    out = os.path.join(_DOCS, "results", "experiments")
    os.makedirs(out, exist_ok=True)
    for old in os.listdir(out):
        os.remove(os.path.join(out, old))
    sources = {"digits_vae_iwae": os.path.join("experiments", "RESULTS.md")}
    results = os.path.join(_ROOT, "experiments", "results")
    for name in sorted(os.listdir(results)):
        readme = os.path.join(results, name, "README.md")
        if os.path.isfile(readme):
            sources[name] = os.path.relpath(readme, _ROOT)
    for name, source in sources.items():
        with open(os.path.join(out, f"{name}.md"), "w") as f:
            f.write(f"```{{include}} ../../../{source}\n:relative-images:\n```\n")


_write_results_pages()


def _copy_notebooks():
    """The notebooks of notebooks/ join the site (executed on every build, like the
    tutorials), so their numbers and plots are on the page and a failing cell fails CI."""
    out = os.path.join(_DOCS, "notebooks")
    os.makedirs(out, exist_ok=True)
    for old in os.listdir(out):
        os.remove(os.path.join(out, old))
    source = os.path.join(_ROOT, "notebooks")
    for name in sorted(os.listdir(source)):
        if name.endswith(".ipynb"):
            shutil.copyfile(os.path.join(source, name), os.path.join(out, name))


_copy_notebooks()

# MyST and notebook execution.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 300
nb_merge_streams = True

# The notebooks' examples are small, so on a CPU XLA's compile time dominates their run
# time. Fewer backend optimisations (the notebook kernels inherit this environment) make the
# build about a third faster; an XLA_FLAGS that already sets the option is left alone.
_FAST_COMPILE = "--xla_backend_optimization_level=0"
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FAST_COMPILE}".strip()

# API reference (Google-style docstrings).
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "none"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# "Attributes:" sections as field lists, so that NamedTuple fields are not described twice.
napoleon_use_ivar = True
napoleon_attr_annotations = False

# HTML.
html_theme = "sphinx_book_theme"
html_title = "vbounds"
html_theme_options = {"show_toc_level": 2, "use_download_button": True}


def _skip_namedtuple_fields(app, what, name, obj, skip, options):
    """Leaves out the "Alias for field number N" members of NamedTuples; the class
    docstring's "Attributes:" section describes the fields."""
    if (getattr(obj, "__doc__", None) or "").startswith("Alias for field number"):
        return True
    return None


def _summaries_end_after_an_ellipsis_only_at_its_last_dot():
    """Autosummary cuts a summary at the first ". ", also inside ``Q_1 Q_2 ... Q_t`` (the
    first line of ``vb.diffusion.cumulative_transitions``), which leaves an unterminated
    inline literal in the table. Do not cut at a period that follows a period."""
    from sphinx.ext import autosummary

    if hasattr(autosummary, "periods_re"):
        autosummary.periods_re = re.compile(r"(?<!\.)\.(?:\s+)")


_summaries_end_after_an_ellipsis_only_at_its_last_dot()


def setup(app):
    app.connect("autodoc-skip-member", _skip_namedtuple_fields)
