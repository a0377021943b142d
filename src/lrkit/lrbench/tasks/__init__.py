"""What is judged: the tasks (data, model, default optimizer and policy), their data sets and models, the optimizers, and ``module:attribute`` loading."""

from lrkit.lrbench.tasks.catalogue import Task, check_task, get_task, list_tasks
from lrkit.lrbench.tasks.datasets import ArrayDataset, DataError, DatasetMissing
from lrkit.lrbench.tasks.optimizers import make_optimizer

__all__ = ["ArrayDataset", "DataError", "DatasetMissing", "Task", "check_task", "get_task", "list_tasks",
           "make_optimizer"]
