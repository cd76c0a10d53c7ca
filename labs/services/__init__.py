"""Writes of the labs app, by concern: datasets, lab authoring, submissions."""
