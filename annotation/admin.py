"""Django admin: patients, recordings, clips (with their distribution), votes, experts.

Votes and distributions are read-only here: votes change only through the API's undo
(so history is kept) and distributions are kept by the database.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from annotation import errors, services
from annotation.models import (
    GRADES,
    Clip,
    ClipDistribution,
    ClipLease,
    ExpertProfile,
    Job,
    Patient,
    Recording,
    RepeatVote,
    SiteSetting,
    Vote,
    VoteHistory,
)
from annotation.selectors import distribution_from_counts

User = get_user_model()


class ReadOnlyMixin:
    """Append-only records (votes, repeat votes, their history): no add, change or
    delete in the admin, for anyone."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class WithdrawNotDeleteMixin:
    """Objects with votes are withdrawn from grading, never deleted (no vote is
    lost): their delete page is refused and there is no bulk delete."""

    def has_votes(self, obj) -> bool:  # pragma: no cover - each admin says
        raise NotImplementedError

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and self.has_votes(obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["code", "is_synthetic", "created_at"]
    list_filter = ["is_synthetic"]
    search_fields = ["code"]


@admin.register(Recording)
class RecordingAdmin(WithdrawNotDeleteMixin, admin.ModelAdmin):
    def has_votes(self, obj) -> bool:
        return Vote.objects.filter(clip__recording=obj).exists() or (
            RepeatVote.objects.filter(clip__recording=obj).exists()
        )

    list_display = [
        "id",
        "original_name",
        "patient",
        "status",
        "progress_percent",
        "fps",
        "width",
        "height",
        "is_synthetic",
        "created_at",
    ]
    list_filter = ["status", "mode", "is_synthetic"]
    search_fields = ["original_name", "patient__code", "sha256"]
    readonly_fields = ["sha256", "created_at", "updated_at", "frames_per_s"]
    raw_id_fields = ["patient"]


class DistributionInline(ReadOnlyMixin, admin.StackedInline):
    model = ClipDistribution
    can_delete = False
    fields = ["summary"]
    readonly_fields = ["summary"]
    verbose_name = "grade distribution (kept by the database)"

    @admin.display(description="distribution")
    def summary(self, obj: ClipDistribution) -> str:
        d = distribution_from_counts(obj.counts)
        if not d["n_votes"]:
            return "no votes yet"
        counts = ", ".join(f"{g}: {c}" for g, c in zip(GRADES, d["counts"]))
        return (
            f"{d['n_votes']} votes ({counts}); mode {d['mode']}, "
            f"mean score {d['mean_score']:.2f}, std {d['std']:.2f}, "
            f"entropy {d['entropy']:.2f} bits"
        )


@admin.register(Clip)
class ClipAdmin(WithdrawNotDeleteMixin, admin.ModelAdmin):
    def has_votes(self, obj) -> bool:
        return obj.votes.exists() or RepeatVote.objects.filter(clip=obj).exists()

    # The votes first and numbers rounded, so the list fits a laptop screen.
    list_display = [
        "id",
        "n_votes",
        "panel",
        "speed_rounded",
        "patient",
        "n_frames",
        "is_synthetic",
        "is_active",
        "review",
    ]
    list_filter = ["review", "is_active", "is_synthetic", "speed_unit"]
    search_fields = ["id", "patient__code", "recording__original_name"]
    list_select_related = ["patient", "recording", "distribution"]
    raw_id_fields = ["patient", "recording"]
    readonly_fields = [
        "created_at",
        "video_preview",
        "panel_detail",
        "review",
        "review_reason",
        "reviewed_by",
        "reviewed_at",
    ]
    inlines = [DistributionInline]
    actions = ["deactivate", "activate"]

    @admin.display(description="votes", ordering="distribution__n_votes")
    def n_votes(self, obj: Clip) -> int:
        row = getattr(obj, "distribution", None)
        return row.n_votes if row else 0

    @staticmethod
    def _counts(obj: Clip) -> list[int]:
        row = getattr(obj, "distribution", None)
        return list(row.counts) if row else [0, 0, 0, 0, 0]

    @admin.display(description="panel A-B-C-D-E")
    def panel(self, obj: Clip) -> str:
        return "-".join(str(n) for n in self._counts(obj))

    @admin.display(description="speed", ordering="speed")
    def speed_rounded(self, obj: Clip) -> str:
        return f"{obj.speed:.1f} {obj.speed_unit}"

    @admin.display(description="panel's grade distribution")
    def panel_detail(self, obj: Clip) -> str:
        counts = self._counts(obj)
        total = sum(counts)
        if not total:
            return "no votes yet"
        parts = [
            f"{grade} {n} ({100 * n / total:.0f} %)"
            for grade, n in zip("ABCDE", counts, strict=True)
        ]
        return f"{total} votes: " + ", ".join(parts)

    @admin.display(description="video")
    def video_preview(self, obj: Clip) -> str:
        if not obj.pk or not obj.video_file:
            return "-"
        url = reverse("clip_video", args=[obj.pk])
        # muted + autoplay + loop: a one-second clip plays at once (a paused
        # <video> without a poster shows a blank box until clicked)
        return format_html(
            '<video src="{}" controls loop muted autoplay playsinline '
            'preload="auto" width="300" height="300"></video>',
            url,
        )

    @admin.action(description="Withdraw the selected clips from grading")
    def deactivate(self, request, queryset) -> None:
        services.clips_set_active(
            clip_ids=queryset.values_list("pk", flat=True), active=False
        )

    @admin.action(description="Put the selected clips back into grading")
    def activate(self, request, queryset) -> None:
        services.clips_set_active(
            clip_ids=queryset.values_list("pk", flat=True), active=True
        )


class VoteHistoryInline(ReadOnlyMixin, admin.TabularInline):
    model = VoteHistory
    fk_name = "vote"
    can_delete = False
    fields = ["action", "previous_grade", "grade", "at"]
    readonly_fields = fields
    extra = 0


@admin.register(Vote)
class VoteAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "expert", "clip", "grade", "seconds_spent", "created_at"]
    list_filter = ["grade", "expert__expert_profile__is_simulated"]
    search_fields = ["expert__username", "expert__expert_profile__code", "clip__id"]
    list_select_related = ["expert", "clip"]
    inlines = [VoteHistoryInline]


@admin.register(RepeatVote)
class RepeatVoteAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "expert", "clip", "grade", "original_grade", "created_at"]
    list_filter = ["grade"]
    search_fields = ["expert__username", "clip__id"]
    list_select_related = ["expert", "clip"]

    @admin.display(description="first grade")
    def original_grade(self, obj: RepeatVote) -> str:
        vote = Vote.objects.filter(expert_id=obj.expert_id, clip_id=obj.clip_id).first()
        return vote.grade if vote else "-"


@admin.register(VoteHistory)
class VoteHistoryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["at", "expert", "clip", "action", "previous_grade", "grade"]
    list_filter = ["action", "is_repeat"]
    search_fields = ["expert__username", "clip__id"]
    list_select_related = ["expert", "clip"]


@admin.register(ClipLease)
class ClipLeaseAdmin(admin.ModelAdmin):
    list_display = ["clip", "expert", "expires_at", "is_repeat", "holder"]
    list_filter = ["is_repeat"]
    raw_id_fields = ["clip", "expert"]


@admin.register(SiteSetting)
class SiteSettingAdmin(admin.ModelAdmin):
    list_display = ["__str__", "reveal_panel_after_vote", "expert_feedback"]

    def has_add_permission(self, request) -> bool:
        return not SiteSetting.objects.exists()

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        services.site_settings_forget()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "created_at", "updated_at"]
    list_filter = ["status", "kind"]
    readonly_fields = ["created_at", "updated_at"]


# --- experts -----------------------------------------------------------------------


class ExpertProfileInline(admin.StackedInline):
    model = ExpertProfile
    can_delete = False
    extra = 0


class ExpertCsvForm(forms.Form):
    csv_file = forms.FileField(
        label="CSV file",
        help_text="Header: username,email,code,years_experience[,password]. "
        "Rows without a password get a generated one, shown once.",
    )


PRIVILEGE_FIELDS = ("is_superuser", "is_staff", "groups", "user_permissions")


class SpermGradeUserAdmin(UserAdmin):
    """Users. Only superusers grant privileges (superuser, staff, groups,
    permissions) or edit superusers; nobody edits their own privileges."""

    inlines = [*UserAdmin.inlines, ExpertProfileInline]
    actions = ["give_expert_role", "give_operator_role", "give_admin_role"]

    def _give(self, request, queryset, role: str) -> None:
        from annotation.services.accounts import role_add

        changed = 0
        for user in queryset:
            if user != request.user:  # nobody edits their own privileges
                role_add(user=user, role=role)
                changed += 1
        messages.success(request, f"{changed} account(s) now have the {role} role.")

    @admin.action(description="Give the expert role (accounts from sign-in)")
    def give_expert_role(self, request, queryset):
        self._give(request, queryset, "expert")

    @admin.action(description="Give the operator role")
    def give_operator_role(self, request, queryset):
        self._give(request, queryset, "operator")

    @admin.action(description="Give the admin role (superusers only)")
    def give_admin_role(self, request, queryset):
        if not request.user.is_superuser:
            messages.error(request, "Only superusers give the admin role.")
            return
        self._give(request, queryset, "admin")

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser or (obj is not None and obj == request.user):
            fields += [f for f in PRIVILEGE_FIELDS if f not in fields]
        return fields

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and (
            obj == request.user or (obj.is_superuser and not request.user.is_superuser)
        ):
            return False
        return super().has_delete_permission(request, obj)

    list_display = [
        "username",
        "expert_code",
        "email",
        "is_staff",
        "is_active",
        "last_login",
    ]
    list_filter = [*UserAdmin.list_filter, "expert_profile__is_simulated"]
    search_fields = [*UserAdmin.search_fields, "expert_profile__code"]
    change_list_template = "admin/annotation/user_change_list.html"

    @admin.display(description="expert code", ordering="expert_profile__code")
    def expert_code(self, obj) -> str:
        profile = getattr(obj, "expert_profile", None)
        return profile.code if profile else "-"

    def get_urls(self):
        return [
            path(
                "import-experts/",
                self.admin_site.admin_view(self.import_experts),
                name="annotation_import_experts",
            ),
            *super().get_urls(),
        ]

    def import_experts(self, request):
        if not self.has_add_permission(request):
            return redirect("admin:index")
        form = ExpertCsvForm(request.POST or None, request.FILES or None)
        created = []
        if request.method == "POST" and form.is_valid():
            raw = form.cleaned_data["csv_file"].read()
            try:
                created = services.experts_import_csv(text=raw.decode("utf-8-sig"))
            except UnicodeDecodeError:
                form.add_error("csv_file", "The file is not UTF-8 text.")
            except errors.InvalidInput as exc:
                for line in exc.message.splitlines():
                    form.add_error("csv_file", line)
            else:
                messages.success(request, f"Imported {len(created)} experts.")
        context = {
            **self.admin_site.each_context(request),
            "title": "Import experts from CSV",
            "form": form,
            "created": created,
            "opts": self.model._meta,
            "changelist_url": reverse("admin:auth_user_changelist"),
        }
        return render(request, "admin/annotation/import_experts.html", context)


class SuperuserOnlyMixin:
    """Groups and API tokens: only superusers see or manage them (a token lets its
    holder vote as its user)."""

    def has_module_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request, *args) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


class SpermGradeGroupAdmin(SuperuserOnlyMixin, GroupAdmin):
    pass


class SpermGradeTokenAdmin(SuperuserOnlyMixin, TokenAdmin):
    pass


admin.site.unregister(User)
admin.site.register(User, SpermGradeUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, SpermGradeGroupAdmin)
admin.site.unregister(TokenProxy)
admin.site.register(TokenProxy, SpermGradeTokenAdmin)
admin.site.site_header = "SpermGrade administration"
admin.site.site_title = "SpermGrade"
