"""LRBench: tasks, the trial runner, verification, recommendation and storage."""
