"""HTTP views, each reading the request, calling one service and translating its answer.

The rater's pages (``rater``), the opaque stimulus images (``stimuli``), the researcher dashboard (``dashboard``),
its results (``results``), a study's preview (``preview``), output uploads (``uploads``), error pages (``errors``),
and the helpers they share (``common``).
"""
