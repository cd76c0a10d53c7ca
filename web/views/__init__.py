"""The learner pages' views: courses.py (catalog, my learning, course, module) and labs.py
(lab submissions, runs, datasets). A lab's own page is its module's page."""
