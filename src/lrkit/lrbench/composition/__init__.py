"""Composition: ``compose`` a policy stage by stage, its next-stage segments, stage trials and fork states."""

from lrkit.lrbench.composition.stagewise import Composition, StageNode, compose, summarize_composition

__all__ = ["Composition", "StageNode", "compose", "summarize_composition"]
