"""HTTP views: the rater's pages (rater), the opaque stimulus images (stimuli), the researcher dashboard (dashboard)."""
