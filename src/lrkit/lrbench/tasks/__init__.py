"""What is judged: the tasks (data, model, default optimizer and policy), their data sets and models, the optimizers, and ``module:attribute`` loading."""
