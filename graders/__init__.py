"""LLM Katas graders: the pytest checks of every kata and the harness they share."""
