"""Report templates (Jinja2), installed as the package ``riskreg.templates`` so wheels carry them."""
