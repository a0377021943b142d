"""Reporting: the HTML report, its SVG charts and the composition tree, and the text/JSON/CSV formats."""

from lrkit.lrbench.report.page import render, render_composition, write_report

__all__ = ["render", "render_composition", "write_report"]
