import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from annotation import errors, services
from annotation.models import ExpertProfile
from tests.factories import ClipFactory, VoteFactory

pytestmark = pytest.mark.django_db

User = get_user_model()

GOOD_CSV = (
    "username,email,code,years_experience,password\n"
    "alice,alice@lab.example,EXP-0101,7,alice-pass-123\n"
    "bob,,EXP-0102,0,\n"
)


@pytest.fixture
def populated(admin_user):
    vote = VoteFactory(grade="B")
    return {"clip": vote.clip, "vote": vote, "admin": admin_user}


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/annotation/patient/",
        "/admin/annotation/recording/",
        "/admin/annotation/clip/",
        "/admin/annotation/clip/{clip}/change/",
        "/admin/annotation/vote/",
        "/admin/annotation/vote/{vote}/change/",
        "/admin/annotation/votehistory/",
        "/admin/annotation/repeatvote/",
        "/admin/annotation/cliplease/",
        "/admin/annotation/job/",
        "/admin/auth/user/",
        "/admin/auth/user/?q=EXP",
        "/admin/auth/user/import-experts/",
        "/admin/annotation/clip/?is_active__exact=1&q=PT",
    ],
)
def test_admin_pages_open_for_admins(client, populated, url):
    client.force_login(populated["admin"])
    url = url.format(clip=populated["clip"].pk, vote=populated["vote"].pk)
    response = client.get(url)
    assert response.status_code == 200


def test_clip_admin_shows_the_distribution(client, populated):
    client.force_login(populated["admin"])
    page = client.get(f"/admin/annotation/clip/{populated['clip'].pk}/change/")
    assert b"1 votes (A: 0, B: 1" in page.content


def test_experts_cannot_open_the_admin(client, expert):
    client.force_login(expert)
    assert client.get("/admin/annotation/vote/").status_code == 302


def test_import_experts_command_creates_accounts_with_profiles(tmp_path):
    path = tmp_path / "experts.csv"
    path.write_text(GOOD_CSV)
    out = io.StringIO()
    call_command("import_experts", str(path), stdout=out)
    alice = User.objects.get(username="alice")
    assert alice.check_password("alice-pass-123")
    assert alice.groups.filter(name="experts").exists()
    assert alice.expert_profile.code == "EXP-0101"
    assert alice.expert_profile.years_experience == 7
    assert "bob\tEXP-0102\tpassword: " in out.getvalue()  # generated, shown once
    assert "Imported 2 experts." in out.getvalue()


def test_import_errors_name_the_line_and_import_nothing(tmp_path):
    services.expert_create(username="taken", password="x-pass-123", code="EXP-0001")
    path = tmp_path / "experts.csv"
    path.write_text(
        "username,email,code,years_experience\n"
        "fresh,fresh@lab.example,EXP-0200,3\n"
        "taken,,EXP-0201,2\n"
        "other,not-an-email,EXP-0001,many\n"
    )
    with pytest.raises(CommandError) as raised:
        call_command("import_experts", str(path))
    message = str(raised.value)
    assert "line 3: username 'taken' already exists" in message
    assert "line 4: 'not-an-email' is not an e-mail address" in message
    assert "line 4: expert code 'EXP-0001' already exists" in message
    assert "line 4: years_experience 'many'" in message
    assert not User.objects.filter(username="fresh").exists()


def test_import_rejects_a_wrong_header():
    with pytest.raises(errors.InvalidInput, match="missing: code"):
        services.experts_import_csv(text="username,email,years_experience\na,,1\n")


def test_import_command_help_explains_the_format():
    from annotation.management.commands.import_experts import Command

    assert "username,email,code,years_experience[,password]" in Command.help


def test_import_command_reports_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_experts", str(tmp_path / "nope.csv"))


def test_admin_import_page_imports_and_shows_generated_passwords(client, admin_user):
    client.force_login(admin_user)
    upload = io.BytesIO(GOOD_CSV.encode())
    upload.name = "experts.csv"
    response = client.post("/admin/auth/user/import-experts/", {"csv_file": upload})
    assert response.status_code == 200
    assert b"Imported 2 experts." in response.content
    assert ExpertProfile.objects.filter(code__in=["EXP-0101", "EXP-0102"]).count() == 2


def test_admin_group_members_get_model_permissions(admin_user):
    assert admin_user.has_perm("annotation.view_vote")
    assert admin_user.has_perm("annotation.change_clip")
    assert ClipFactory() is not None
