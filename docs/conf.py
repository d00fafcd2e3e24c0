"""Sphinx configuration of fastem's documentation.

Build: ``pip install ".[docs]" && sphinx-build -W -b html docs docs/_build/html``
(warnings are errors; the examples gallery runs as part of the build).
"""

import os
import sys
import warnings

import fastem

project = "fastem"
author = "the fastem developers"
copyright = "2026, the fastem developers"
version = release = fastem.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5",
                    "auto_examples/*.pickle", "sg_execution_times.rst"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# -- API reference -------------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
numpydoc_show_class_members = True
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# numpydoc's validation runs in the tests (tests/test_docs.py) over every public
# name, where it can say which name failed; here it would only repeat it.
numpydoc_validation_checks = set()
numpydoc_xref_param_type = False

intersphinx_mapping = {}  # the build runs offline (CI has no network)

# -- Examples gallery ------------------------------------------------------------
here = os.path.dirname(os.path.abspath(__file__))
sphinx_gallery_conf = {
    "examples_dirs": os.path.join(here, "..", "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "plot_gallery": os.environ.get("FASTEM_DOCS_GALLERY", "True"),
}

# The gallery's fits print no ConvergenceWarning noise into the pages.
warnings.filterwarnings("ignore", category=UserWarning,
                        message="Matplotlib is currently using agg")

# MathJax renders the formulas, from its CDN by default (as on every Sphinx
# site); FASTEM_DOCS_MATHJAX points at a local copy for offline viewing, a path
# under the built site's _static folder (e.g. "mathjax/tex-chtml.js").
if os.environ.get("FASTEM_DOCS_MATHJAX"):
    mathjax_path = os.environ["FASTEM_DOCS_MATHJAX"]

# -- HTML ------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"fastem {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": True,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path = []
html_show_sourcelink = False
sys.path.insert(0, here)
