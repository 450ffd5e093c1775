"""Generative models lab: the Streamlit entry point (`streamlit run dashboard/app.py`).

The shell only builds the sidebar (device, dataset, model picker) and the navigation; each page is
a file in dashboard/app_pages/ and reads the sidebar's choice with ``dashboard.context.context()``.

The folder is deliberately not called ``pages/``: Streamlit treats a ``pages/`` folder beside the
entry script as its older multipage layout, and then a deep link (``/train`` on a fresh server) or
``AppTest.switch_page`` runs the page file alone, without this script, its sidebar or its context.
"""
import sys
from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:      # `streamlit run` puts dashboard/ on the path, not the repo
    sys.path.insert(0, str(HERE.parent))

from dashboard import startup  # noqa: E402

startup.skip_dynamo_marking()             # before any model is built: saves seconds of cold start

from dashboard import session, sidebar, ui  # noqa: E402

# (file in app_pages/, title, icon).
PAGES = [
    ("overview.py", "Overview / compare", ":material/grid_view:"),
    ("train.py", "Train live", ":material/model_training:"),
    ("conditional.py", "Conditional generation", ":material/filter_9_plus:"),
    ("latent.py", "Latent space", ":material/scatter_plot:"),
    ("interpolate.py", "Interpolate & traverse", ":material/linear_scale:"),
    ("ood.py", "Out-of-distribution", ":material/explore_off:"),
    ("mode_collapse.py", "Mode collapse lab", ":material/blur_on:"),
    ("flow.py", "Flow matching", ":material/air:"),
    ("lessons.py", "Lessons", ":material/school:"),
]

st.set_page_config(page_title="Generative models lab", page_icon=":material/auto_awesome:", layout="wide")
pages = [st.Page(HERE / "app_pages" / f, title=t, icon=i, default=(f == "overview.py")) for f, t, i in PAGES]
page = st.navigation(pages)
st.sidebar.title("Generative models lab")
session.session_id()                      # ?sid=…: a reload finds this session's runs again
ctx = sidebar.sidebar()
if ctx.present:
    ui.presentation_css()
with ui.boundary(f"The page {page.title}"):     # a failure is one line here; the sidebar and other pages work
    page.run()
