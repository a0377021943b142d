"""The study: its configuration, its stored schema, storage, the queue and the count of candidates, the yardsticks, ranking, the re-run command, interrupts and progress."""
