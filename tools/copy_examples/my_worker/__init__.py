"""Your worker: a package the instances run as `python3.11 -m my_worker` (here one that only says it started)."""
