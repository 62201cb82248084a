"""Imported once, by the forkserver that render workers are forked from (render_pool.start_workers):
WeasyPrint, the default look's template and stylesheet, and its fonts are loaded here, so every
worker inherits them warm instead of loading them again (0.6-0.7 s of CPU a worker when spawned)."""
import gc

from billing_batch.documents import render, render_pool

# The workers hold the forkserver's pipe from the batch (so it never sees the batch go) and die with the
# forkserver: the forkserver must die with the batch, or a killed run would leave them behind.
render_pool._die_with_parent()
render.warm(render_pool.DEFAULT_LOOK)
# Everything loaded so far lives as long as the process: keep the garbage collector off it, here and in
# every worker forked from here (as render_invoices does for the in-process loop).
gc.freeze()
