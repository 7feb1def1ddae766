from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation-accept"),
    path("orgs/new/", views.organization_new, name="organization-new"),
    path("orgs/switch/", views.organization_switch, name="organization-switch"),
    path("orgs/<slug:org_slug>/", views.org_home, name="org-home"),
    path("orgs/<slug:org_slug>/members/", views.members, name="members"),
    path("orgs/<slug:org_slug>/members/invite/", views.member_invite, name="member-invite"),
    path("orgs/<slug:org_slug>/members/<int:pk>/role/", views.member_role, name="member-role"),
    path("orgs/<slug:org_slug>/members/<int:pk>/remove/", views.member_remove, name="member-remove"),
    path("orgs/<slug:org_slug>/invitations/<int:pk>/revoke/", views.invitation_revoke, name="invitation-revoke"),
    path("orgs/<slug:org_slug>/api-keys/", views.api_keys, name="api-keys"),
    path("orgs/<slug:org_slug>/api-keys/<int:pk>/revoke/", views.api_key_revoke, name="api-key-revoke"),
]
