"""Course-as-code: a course folder read into plain data (parse), written back (export).

Only the course's own part lives here: course.yaml, stage folders, module files and
their knowledge checks. The `lab:` sections and `datasets/` belong to labs, which
orchestrates the whole folder (`labs.services.authoring.course_folder_import`,
`labs.exporting.course_folder_export`); courses never imports labs.
"""
