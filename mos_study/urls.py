from django.urls import path  # noqa: F401  (routes are added by the study views)

app_name = "mos_study"
urlpatterns = []
