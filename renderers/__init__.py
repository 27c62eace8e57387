"""Pure functions from a report document (semantic/report_document.py) to the bytes of one format."""
