"""URL modules of the learner pages, one per namespace ("courses", "labs"): the names and
paths are the ones the templates have always used."""
