"""Tasks: one module each, registered in tfseq/tasks/registry.py."""
