from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy
from django.views.generic import RedirectView

from .security import throttle_login
from .views import dashboard, preview, rater, results, stimuli, uploads

app_name = "mos_study"
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="mos_study:dashboard"), name="home"),
    # Raters: one link per study, then a personal link that resumes the session.
    path("s/<str:study_token>/", rater.start, name="start"),
    path("s/<str:study_token>/refused/", rater.refuse_device, name="refuse_device"),
    path("r/<str:rater_token>/", rater.rate, name="rate"),
    path("r/<str:rater_token>/state/", rater.state, name="session_state"),
    path("r/<str:rater_token>/rate/", rater.submit, name="submit_rating"),
    path("r/<str:rater_token>/choose/", rater.submit_choice, name="submit_choice"),
    path("r/<str:rater_token>/heartbeat/", rater.heartbeat, name="heartbeat"),
    path("i/<str:token>.png", stimuli.image, name="image"),
    # Researchers.
    path("dashboard/", dashboard.index, name="dashboard"),
    path("dashboard/upload/", uploads.upload_outputs, name="upload_outputs"),
    path("dashboard/<int:pk>/", dashboard.detail, name="study_detail"),
    path("dashboard/<int:pk>/ratings.csv", dashboard.ratings_csv, name="ratings_csv"),
    path("dashboard/<int:pk>/results/", results.results, name="study_results"),
    path("dashboard/<int:pk>/results/live/", results.results_live, name="results_live"),
    path("dashboard/<int:pk>/results/files/<path:name>", results.export_file, name="export_file"),
    path("dashboard/<int:pk>/results.zip", results.export_zip, name="export_zip"),
    path("dashboard/<int:pk>/mos.svg", results.mos_svg, name="mos_svg"),
    path("dashboard/<int:pk>/preview/", preview.preview, name="preview"),
    path("dashboard/<int:pk>/preview/state/", preview.preview_state, name="preview_state"),
    path("dashboard/<int:pk>/preview/rate/", preview.preview_rate, name="preview_rate"),
    path(
        "login/",
        throttle_login(
            auth_views.LoginView.as_view(
                template_name="mos_study/login.html", next_page=reverse_lazy("mos_study:dashboard")
            )
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page=reverse_lazy("mos_study:login")), name="logout"),
]
