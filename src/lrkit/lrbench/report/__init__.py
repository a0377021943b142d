"""Reporting: the HTML report, its SVG charts and the composition tree, and the text/JSON/CSV formats."""
