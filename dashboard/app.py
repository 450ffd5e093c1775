"""Generative models lab: the Streamlit entry point (`streamlit run dashboard/app.py`)."""
import streamlit as st

import genlib

st.set_page_config(page_title="Generative models lab", layout="wide")
st.title("Generative models lab")
st.write("Train and explore VAEs and GANs. Devices here:", ", ".join(genlib.available_devices()))
