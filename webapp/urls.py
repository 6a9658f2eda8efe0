from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from webapp.accounts import views as accounts
from webapp.jobs import views as jobs
from webapp.recordings import views as recordings

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="sessions"), name="home"),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("tokens/", accounts.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke", accounts.revoke_token, name="revoke_token"),
    path("subjects/", recordings.subjects, name="subjects"),
    path("sessions/", recordings.sessions, name="sessions"),
    path("sessions/<int:session_id>/", recordings.session_detail, name="session"),
    path(
        "sessions/<int:session_id>/status",
        recordings.session_status,
        name="session_status",
    ),
    path(
        "sessions/<int:session_id>/start",
        recordings.start_recording,
        name="start_recording",
    ),
    path(
        "sessions/<int:session_id>/stop",
        recordings.stop_recording,
        name="stop_recording",
    ),
    path("sessions/<int:session_id>/download", recordings.download, name="download"),
    path("sessions/<int:session_id>/label", jobs.start_labeling, name="start_labeling"),
    path("jobs/<int:job_id>/", jobs.job_detail, name="job"),
    path("jobs/<int:job_id>/status", jobs.job_status, name="job_status"),
]
