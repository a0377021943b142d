"""What is judged: the tasks (data, model, default optimizer and policy), their data sets and models, the optimizers, and ``module:attribute`` loading."""

from lrkit.lrbench.tasks.catalogue import Task, check_task, get_task, is_training_function, list_tasks, task_defaults
from lrkit.lrbench.tasks.datasets import ArrayDataset, DataError, DatasetMissing
from lrkit.lrbench.tasks.optimizers import make_optimizer

__all__ = ["ArrayDataset", "DataError", "DatasetMissing", "Task", "check_task", "get_task", "is_training_function",
           "list_tasks", "make_optimizer", "task_defaults"]
