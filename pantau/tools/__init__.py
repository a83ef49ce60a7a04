"""The tools layer: the ``pantau`` command and what it runs (demo, provision, simulate, the
local broker and Prometheus stack). It may import every other layer; nothing imports it.
"""
