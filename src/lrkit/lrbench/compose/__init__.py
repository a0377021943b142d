"""Composition: ``compose`` a policy stage by stage, its next-stage segments, stage trials and fork states."""
