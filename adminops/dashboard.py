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
from adminops.serializers import AnalyticsQuerySerializer
from config.services import ActionRefused
from products import importing

POLL_SECONDS = 5

TOOLS = {
    "warm_caches": ("Warm every cache type", services.tool_caches_warm),
    "rebuild_points": ("Rebuild every user's points from the ledger", services.tool_points_rebuild),
    "rebuild_ranking_stats": ("Rebuild ranking stats", services.tool_ranking_stats_rebuild),
    "reevaluate_achievements": (
        "Re-evaluate achievements over history (no notifications)",
        services.tool_achievements_reevaluate,
    ),
}


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
    return TemplateResponse(request, "adminops/analytics.html", context)


def _bars(rows: list[dict], field: str) -> dict:
    """Rows of a per-day series laid out as SVG bars (attributes only: no inline styles)."""
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
                "label": f"{row.get('day')}: {row[field]}",
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
        "tools": [(name, label) for name, (label, _) in TOOLS.items()],
    }
    return TemplateResponse(request, "adminops/tools.html", context)


def _tool_run(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("tool", "")
    if name == "import_products":
        return _import_run(request)
    if name not in TOOLS:
        messages.error(request, "Unknown tool.")
        return redirect("adminops-tools")
    label, run = TOOLS[name]
    try:
        report = run(actor=request_user(request))
    except ActionRefused as exc:
        messages.error(request, str(exc))
        return redirect("adminops-tools")
    details = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in report.items())
    messages.success(request, f"{label}: {details}")
    return redirect("adminops-tools")


def _import_run(request: HttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a CSV file to import.")
        return redirect("adminops-tools")
    try:
        text = upload.read().decode("utf-8-sig")
        report = importing.products_import_csv(
            actor=request_user(request),
            text=text,
            all_or_nothing=bool(request.POST.get("all_or_nothing")),
        )
    except (UnicodeDecodeError, importing.CsvImportError, ActionRefused) as exc:
        messages.error(request, f"Import refused: {exc}")
        return redirect("adminops-tools")
    level = messages.SUCCESS if report.applied and not report.rejected else messages.WARNING
    summary = (
        f"Import {'applied' if report.applied else 'not applied'}: {report.created} created, "
        f"{report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.rejected)} rejected."
    )
    messages.add_message(request, level, summary)
    for rejected in report.rejected[:20]:
        messages.warning(
            request, f"Line {rejected['line']} ({rejected['slug']}): {rejected['errors']}"
        )
    return redirect("adminops-tools")
