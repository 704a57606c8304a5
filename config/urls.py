from django.contrib import admin
from django.urls import include, path

from mos_study.security import throttle_login

# The admin's login is throttled like /login/: failed attempts per account and per address (SRMOS_RATE_LIMITS).
admin.site.login = throttle_login(admin.site.login)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("mos_study.urls")),
]
