"""Entry point of the dashboard: ``streamlit run streamlit_app.py`` (or ``make run``)."""

from dashboard.app import main

main()
