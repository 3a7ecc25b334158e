"""Employee pages inside the Django admin: the live operations dashboard and the tools."""

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_http_methods

from accounts.authentication import request_user
from adminops import caching as charts
from adminops import selectors, services
from adminops.caching import MAX_DAYS, MAX_LIMIT
from adminops.models import JobKind
from adminops.serializers import AnalyticsQuerySerializer
from products import importing

POLL_SECONDS = 5

# The tools the page offers (the CSV import has a form of its own).
TOOLS = [kind for kind in JobKind if kind != JobKind.IMPORT_PRODUCTS]


def dashboard(request: HttpRequest) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Operations dashboard",
        "poll_seconds": POLL_SECONDS,
    }
    return TemplateResponse(request, "adminops/dashboard.html", context)


def analytics(request: HttpRequest) -> HttpResponse:
    """Every analytics report on one page, for the period and limits chosen in its form."""
    form = AnalyticsQuerySerializer(data={k: v for k, v in request.GET.items() if v != ""})
    context = {
        **admin.site.each_context(request),
        "title": "Analytics",
        "query": request.GET,
        "max_days": MAX_DAYS,
        "max_limit": MAX_LIMIT,
    }
    if not form.is_valid():
        context["errors"] = [
            f"{field}: {' '.join(map(str, e))}" for field, e in form.errors.items()
        ]
        return TemplateResponse(request, "adminops/analytics.html", context, status=400)
    query = form.validated_data
    days, limit, product_id = query["days"], query["limit"], query.get("product")
    views = charts.analytics_views(days=days, limit=limit, product_id=product_id)
    context.update(
        days=days,
        limit=limit,
        searches=charts.analytics_searches(days=days, limit=limit),
        views=views,
        views_bars=_bars(views["per_day"], "views"),
        active=charts.analytics_active_users(days=days),
        streaks=charts.analytics_streaks(limit=limit),
        achievements=charts.analytics_achievements(days=days),
        rankings=charts.analytics_rankings(days=days, category=query.get("category")),
        movement=(
            charts.analytics_rank_movement(product_id=product_id, days=days)
            if product_id is not None
            else None
        ),
    )
    context["active_bars"] = _bars(context["active"]["per_day"], "users")
    context["weekly_bars"] = _bars(context["active"]["per_week"], "users", period="week")
    return TemplateResponse(request, "adminops/analytics.html", context)


def _bars(rows: list[dict], field: str, period: str = "day") -> dict:
    """Rows of a per-day (or per-week) series laid out as SVG bars (attributes only: no inline
    styles)."""
    top = max((row[field] for row in rows), default=0) or 1
    width = 600 / max(len(rows), 1)
    return {
        "width": 600,
        "height": 120,
        "bars": [
            {
                "x": round(i * width, 1),
                "w": round(max(width - 1, 1), 1),
                "h": round(110 * row[field] / top, 1),
                "y": round(120 - 110 * row[field] / top, 1),
                "label": f"{row[period]}: {row[field]}",
            }
            for i, row in enumerate(rows)
        ],
        "top": top,
    }


def dashboard_snapshot(request: HttpRequest) -> JsonResponse:
    """Polled by the dashboard page; under /admin/ so the API's rate limit does not starve it."""
    response = JsonResponse(selectors.dashboard_snapshot())
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def tools(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _tool_run(request)
    context = {
        **admin.site.each_context(request),
        "title": "Operations tools",
        "tools": [(kind.value, kind.label) for kind in TOOLS],
        "jobs": selectors.job_list()[:10],
    }
    return TemplateResponse(request, "adminops/tools.html", context)


def _tool_run(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("tool", "")
    if name == JobKind.IMPORT_PRODUCTS:
        return _import_run(request)
    if name not in TOOLS:
        messages.error(request, "Unknown tool.")
        return redirect("adminops-tools")
    _job_started(request, kind=JobKind(name))
    return redirect("adminops-tools")


def _job_started(request: HttpRequest, *, kind: JobKind, params: dict | None = None) -> None:
    job, created = services.job_start(kind=kind, actor=request_user(request), params=params)
    state = "queued" if created else "already queued or running"
    messages.success(
        request, f"{kind.label}: job {job.pk} {state} ({job.status} now); see the jobs below."
    )


def _import_run(request: HttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a CSV file to import.")
        return redirect("adminops-tools")
    try:
        text = upload.read().decode("utf-8-sig")
        importing.products_csv_check(text=text)
    except (UnicodeDecodeError, importing.CsvImportError) as exc:
        messages.error(request, f"Import refused: {exc}")
        return redirect("adminops-tools")
    params = {"text": text, "all_or_nothing": bool(request.POST.get("all_or_nothing"))}
    _job_started(request, kind=JobKind.IMPORT_PRODUCTS, params=params)
    return redirect("adminops-tools")
