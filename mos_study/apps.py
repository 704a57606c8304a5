from django.apps import AppConfig


class MosStudyConfig(AppConfig):
    name = "mos_study"
    verbose_name = "MOS study"
    default_auto_field = "django.db.models.BigAutoField"
