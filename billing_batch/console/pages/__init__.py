"""The console's pages, one module a page, each exposing `routes` (a list of starlette.routing.Route) that
app.make_app gathers."""
