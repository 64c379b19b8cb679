"""The HTTP service (FastAPI). Imports triage/, never training/."""
