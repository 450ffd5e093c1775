"""The Streamlit dashboard over genlib: `streamlit run dashboard/app.py`."""
