from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from webapp.accounts import views as accounts
from webapp.accounts.login_limit import LoginForm
from webapp.jobs import views as jobs
from webapp.jobs import worker_views
from webapp.live import views as live
from webapp.protocols import views as protocols
from webapp.recordings import review
from webapp.recordings import video as recording_video
from webapp.recordings import views as recordings
from webapp.registry import views as registry

# a form over FORM_MAX_KB is answered with a 413 that says so
handler400 = "webapp.errors.bad_request"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="sessions"), name="home"),
    path("admin/", admin.site.urls),
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=LoginForm),
        name="login",
    ),
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
    path("protocols/", protocols.protocols, name="protocols"),
    path(
        "protocols/<int:protocol_id>/delete",
        protocols.delete_protocol,
        name="delete_protocol",
    ),
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
    path(
        "sessions/<int:session_id>/video/request",
        recordings.request_video,
        name="request_video",
    ),
    path("sessions/<int:session_id>/video", recordings.download_video, name="video"),
    path(
        "sessions/<int:session_id>/video/frames",
        recordings.download_video_frames,
        name="video_frames",
    ),
    # the agent's upload of a saved video (token auth; webapp/recordings/video.py)
    path(
        "agent/sessions/<int:session_id>/video",
        recording_video.receive_video,
        name="agent_video",
    ),
    path(
        "agent/sessions/<int:session_id>/video/frames",
        recording_video.receive_frame_times,
        name="agent_video_frames",
    ),
    path("sessions/<int:session_id>/hand/", live.hand_page, name="live_hand"),
    path("sessions/<int:session_id>/review/", review.review_page, name="review"),
    path(
        "sessions/<int:session_id>/review/overview",
        review.review_overview,
        name="review_overview",
    ),
    path("sessions/<int:session_id>/review/emg", review.review_emg, name="review_emg"),
    path(
        "sessions/<int:session_id>/review/labels",
        review.review_labels,
        name="review_labels",
    ),
    path("sessions/<int:session_id>/label", jobs.start_labeling, name="start_labeling"),
    path("jobs/<int:job_id>/", jobs.job_detail, name="job"),
    path("jobs/<int:job_id>/status", jobs.job_status, name="job_status"),
    path("workers/", worker_views.workers, name="workers"),
    path("models/", registry.registry, name="registry"),
    path("models/train/", registry.train, name="start_training"),
    path("models/compare/", registry.compare, name="compare_models"),
    path("models/<int:run_id>/", registry.run_detail, name="training_run"),
    path("models/<int:run_id>/status", registry.run_status, name="training_status"),
    path("models/<int:run_id>/cancel", registry.cancel, name="cancel_training"),
    path("models/<int:run_id>/resume", registry.resume, name="resume_training"),
    path("models/<int:run_id>/finetune", registry.finetune, name="finetune_model"),
    path(
        "models/<int:run_id>/download",
        registry.download_checkpoint,
        name="download_checkpoint",
    ),
    path("models/<int:run_id>/export/<str:fmt>", registry.export, name="export_model"),
    path(
        "models/<int:run_id>/download/<str:fmt>",
        registry.download_export,
        name="download_export",
    ),
]
