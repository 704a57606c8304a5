"""Services: the logic behind views, commands and tasks, one module per job.

``errors`` (``StudyError`` and its kinds), ``study_options`` (the options of a new study, defined once),
``study_setup`` (creating and preparing a study), ``sessions`` (a rater's session), ``rating`` (the rating path),
``progress`` (the dashboard's queries), ``rating_table`` (a study's ratings as the analysis reads them), ``exports``
(every file of ``export_results``), ``benchmark`` (benchmark runs recorded in the database).
"""
