"""Learner pages: course, module, lab, run and dataset views. No models."""
