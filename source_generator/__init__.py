"""source_generator."""
