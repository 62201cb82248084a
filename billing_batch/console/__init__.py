"""The local web console (`billing-batch serve`, docs/console.md): pages over the pipeline's functions, for
finance staff who would rather not use a terminal.

app builds the Starlette application from the page modules (pages/); state holds what every request works on
(the workspace, the token, the one job); security is the middleware that keeps other sites and other local
users out; views renders the Jinja2 templates; jobs runs the one long command at a time; files serves the
output folder and takes uploads safely."""
