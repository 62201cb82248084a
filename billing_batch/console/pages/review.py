"""Review: the latest run's review page (the one `billing-batch review` opens), served from the output folder
with its PDFs and detail files (/output/); a page saying to run the month first when no run has written one."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from billing_batch.console.views import render
from billing_batch.review import runs


def review(request: Request) -> Response:
    """GET /review: a redirect to /output/runs/<run id>/review.html of the latest billing run."""
    output = request.app.state.console.output
    try:
        page = runs.find_review(output, None)
    except LookupError as exc:
        return render(request, "review.html", message=str(exc))
    return RedirectResponse("/output/" + page.relative_to(output).as_posix(), status_code=303)


routes = [Route("/review", review, methods=["GET"])]
