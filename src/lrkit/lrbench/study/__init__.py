"""The study: its configuration, its stored schema, storage, the queue and the count of candidates, the yardsticks, ranking, the re-run command, interrupts and progress."""

from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.storage import create_study, load_study, open_storage, study_names

__all__ = ["StudyConfig", "create_study", "load_study", "open_storage", "study_names"]
